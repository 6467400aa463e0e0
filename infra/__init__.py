"""The CDK app: one construct per concern, wired in `infra.stack`."""
