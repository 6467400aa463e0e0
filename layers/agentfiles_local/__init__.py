"""The local stack, the offline model and the command-line client (not shipped to Lambda)."""
