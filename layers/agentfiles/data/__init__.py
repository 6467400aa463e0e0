"""The data layer: the only code that touches DynamoDB, S3 and SQS."""
