"""The mock's channel endpoints (bot info, webhook URL, webhook test) answer as LINE's OpenAPI files describe."""
from __future__ import annotations

import threading

import pytest
import yaml
from jsonschema import Draft7Validator
from linebot.v3.messaging import ApiClient, Configuration, MessagingApi, SetWebhookEndpointRequest
from linebot.v3.messaging import TestWebhookEndpointRequest as WebhookTestRequest
from linebot.v3.messaging.exceptions import ApiException

from bot.mockline import SPEC, convert_schemas


@pytest.fixture(scope="module")
def response_schema():
    with open(SPEC, encoding="utf-8") as fh:
        spec = yaml.safe_load(fh)
    components = {"schemas": convert_schemas(spec["components"]["schemas"])}

    def check(name: str, body: dict) -> None:
        schema = {"$ref": f"#/components/schemas/{name}", "components": components}
        errors = [e.message for e in Draft7Validator(schema).iter_errors(body)]
        assert errors == [], (name, body)

    return check


def api(line, token="t"):
    return MessagingApi(ApiClient(Configuration(host=line.url, access_token=token)))


def test_bot_info_and_the_webhook_url_as_the_sdk_reads_them(line, response_schema):
    client = api(line)
    info = client.get_bot_info(_request_timeout=5)
    assert info.basic_id == "@gonghao"
    response_schema("BotInfoResponse", line.requests[-1].response)
    with pytest.raises(ApiException) as refused:
        client.get_webhook_endpoint(_request_timeout=5)
    assert refused.value.status == 404  # none set yet
    client.set_webhook_endpoint(SetWebhookEndpointRequest(endpoint="https://bot.example.tw/callback"),
                                _request_timeout=5)
    endpoint = client.get_webhook_endpoint(_request_timeout=5)
    assert (endpoint.endpoint, endpoint.active) == ("https://bot.example.tw/callback", True)
    response_schema("GetWebhookEndpointResponse", line.requests[-1].response)
    with pytest.raises(ApiException) as refused:
        client.set_webhook_endpoint(SetWebhookEndpointRequest(endpoint="http://bot.example.tw/callback"),
                                    _request_timeout=5)
    assert refused.value.status == 400  # LINE wants https (the mock lets loopback use http)
    assert line.webhook_endpoint == "https://bot.example.tw/callback"


def test_a_wrong_token_is_refused_when_the_mock_knows_the_right_one(line):
    line.access_tokens = {"right"}
    assert api(line, "right").get_bot_info(_request_timeout=5).display_name == "共好小幫手"
    with pytest.raises(ApiException) as refused:
        api(line, "wrong").get_bot_info(_request_timeout=5)
    assert refused.value.status == 401


def test_the_webhook_test_posts_a_signed_empty_event_list(line, response_schema):
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from bot.webhook import signature_ok

    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(body)
            self.send_response(200 if signature_ok("secret", body, self.headers["x-line-signature"]) else 400)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/callback"
    try:
        line.channel_secret = "secret"
        result = api(line).test_webhook_endpoint(WebhookTestRequest(endpoint=url), _request_timeout=10)
        assert (result.success, result.status_code) == (True, 200)
        response_schema("TestWebhookEndpointResponse", line.requests[-1].response)
        assert b'"events": []' in seen[0]
        line.channel_secret = "another"
        result = api(line).test_webhook_endpoint(WebhookTestRequest(endpoint=url), _request_timeout=10)
        assert (result.success, result.status_code, result.reason) == (False, 400, "ERROR_STATUS_CODE")
    finally:
        server.shutdown()
    result = api(line).test_webhook_endpoint(WebhookTestRequest(endpoint=url), _request_timeout=10)
    assert (result.success, result.status_code) == (False, 0)
