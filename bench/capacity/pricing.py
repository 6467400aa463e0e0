"""What each metered quantity costs: one region's list prices, dated, overridable.

The quantities are the keys of a usage counter (`Counter[str]`, see `meter.py`);
`cost_by_service` turns a usage into dollars with a `PriceTable`. Override any price
with a JSON object of field names and values, given inline or as a file path in
`CAPACITY_PRICES`:

    CAPACITY_PRICES='{"region": "eu-west-1", "lambda_gb_second_arm64": 0.0000133334}'
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

# ---- the quantities a meter counts ----------------------------------------------

DDB_READ_UNITS = "dynamodb.read_request_units"
DDB_WRITE_UNITS = "dynamodb.write_request_units"  # table writes
DDB_INDEX_WRITE_UNITS = "dynamodb.index_write_request_units"  # global secondary index writes
S3_PUT_REQUESTS = "s3.put_requests"  # PUT, COPY, POST, LIST
S3_GET_REQUESTS = "s3.get_requests"  # GET, HEAD and the rest
S3_DELETE_REQUESTS = "s3.delete_requests"  # free
S3_BYTES_IN = "s3.bytes_put"
S3_BYTES_OUT = "s3.bytes_got"
SQS_REQUESTS = "sqs.requests"  # 64 KiB chunks of payload
LAMBDA_REQUESTS = "lambda.requests"
LAMBDA_GB_SECONDS = "lambda.gb_seconds"
HTTP_API_REQUESTS = "apigateway.http_requests"  # 512 KB chunks
WEBSOCKET_MESSAGES = "apigateway.websocket_messages"  # 32 KB chunks
WEBSOCKET_CONNECTION_MINUTES = "apigateway.websocket_connection_minutes"
TRANSFER_OUT_BYTES = "transfer.out_bytes"  # to the internet: API answers, downloads, model requests
MODEL_INPUT_TOKENS = "model.input_tokens"
MODEL_OUTPUT_TOKENS = "model.output_tokens"

GB = 1024**3


class PriceTable(BaseModel):
    """US East (N. Virginia) list prices, first pricing tier, without the free tier."""

    model_config = ConfigDict(extra="forbid")

    region: str = "us-east-1"
    taken_on: str = Field(
        default="2026-11-29",
        description="the date these figures were recorded, from the pages in `sources`",
    )
    dynamodb_read_request_unit_per_million: float = 0.125  # on-demand, Standard table class
    dynamodb_write_request_unit_per_million: float = 0.625
    s3_put_per_thousand: float = 0.005  # S3 Standard: PUT, COPY, POST, LIST
    s3_get_per_thousand: float = 0.0004  # GET, SELECT and all other requests (HEAD)
    sqs_request_per_million: float = 0.40  # standard queue
    lambda_request_per_million: float = 0.20
    lambda_gb_second_arm64: float = 0.0000133334
    http_api_request_per_million: float = 1.00  # first 300 million a month
    websocket_message_per_million: float = 1.00  # first billion a month
    websocket_connection_minute_per_million: float = 0.25
    transfer_out_per_gb: float = 0.09  # to the internet, first 10 TB a month
    model_name: str = "gpt-4o-mini"
    model_input_token_per_million: float = 0.15
    model_output_token_per_million: float = 0.60
    sources: dict[str, str] = {
        "dynamodb": "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        "s3": "https://aws.amazon.com/s3/pricing/",
        "sqs": "https://aws.amazon.com/sqs/pricing/",
        "lambda": "https://aws.amazon.com/lambda/pricing/",
        "apigateway": "https://aws.amazon.com/api-gateway/pricing/",
        "transfer": "https://aws.amazon.com/ec2/pricing/on-demand/#Data_Transfer",
        "model": "https://openai.com/api/pricing/",
    }


class Rate(NamedTuple):
    service: str
    usd_per_unit: float


def rates(prices: PriceTable) -> dict[str, Rate]:
    """The dollar price of one of each quantity; quantities absent here cost nothing."""
    p = prices
    return {
        DDB_READ_UNITS: Rate("DynamoDB", p.dynamodb_read_request_unit_per_million / 1e6),
        DDB_WRITE_UNITS: Rate("DynamoDB", p.dynamodb_write_request_unit_per_million / 1e6),
        DDB_INDEX_WRITE_UNITS: Rate("DynamoDB", p.dynamodb_write_request_unit_per_million / 1e6),
        S3_PUT_REQUESTS: Rate("S3", p.s3_put_per_thousand / 1e3),
        S3_GET_REQUESTS: Rate("S3", p.s3_get_per_thousand / 1e3),
        SQS_REQUESTS: Rate("SQS", p.sqs_request_per_million / 1e6),
        LAMBDA_REQUESTS: Rate("Lambda", p.lambda_request_per_million / 1e6),
        LAMBDA_GB_SECONDS: Rate("Lambda", p.lambda_gb_second_arm64),
        HTTP_API_REQUESTS: Rate("API Gateway", p.http_api_request_per_million / 1e6),
        WEBSOCKET_MESSAGES: Rate("API Gateway", p.websocket_message_per_million / 1e6),
        WEBSOCKET_CONNECTION_MINUTES: Rate("API Gateway", p.websocket_connection_minute_per_million / 1e6),
        TRANSFER_OUT_BYTES: Rate("Data transfer out", p.transfer_out_per_gb / GB),
        MODEL_INPUT_TOKENS: Rate("Model tokens", p.model_input_token_per_million / 1e6),
        MODEL_OUTPUT_TOKENS: Rate("Model tokens", p.model_output_token_per_million / 1e6),
    }


INFRASTRUCTURE = ("DynamoDB", "Lambda", "API Gateway", "SQS", "S3", "Data transfer out")


def cost_by_service(usage: Mapping[str, float], prices: PriceTable) -> Counter[str]:
    table = rates(prices)
    cost: Counter[str] = Counter()
    for quantity, amount in usage.items():
        if quantity in table:
            rate = table[quantity]
            cost[rate.service] += amount * rate.usd_per_unit
    return cost


def load_prices(environ: Mapping[str, str] = os.environ) -> PriceTable:
    """The default table, with the fields given in `CAPACITY_PRICES` (inline JSON or a
    path to a JSON file) replaced."""
    override = environ.get("CAPACITY_PRICES", "").strip()
    if not override:
        return PriceTable()
    text = override if override.startswith("{") else Path(override).read_text()
    return PriceTable.model_validate({**PriceTable().model_dump(), **json.loads(text)})
