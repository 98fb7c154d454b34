"""Local stand-ins for the clouds' front doors, checking what the real services check before the simulator
answers: AWS Signature Version 4 (recomputed with botocore from the request as received), Google's OAuth2
token endpoint (a service-account JWT assertion, its RS256 signature verified), and the bearer token it
issued."""

from __future__ import annotations

import base64
import contextlib
import datetime
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import aiohttp
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SIGV4_MAX_SKEW = datetime.timedelta(minutes=5)
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
#: The audience Google's token endpoint requires of an assertion, wherever the key file says to post it.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


class Refused(Exception):
    """What the fake front door answers 403 with."""


def verify_sigv4(method: str, url: str, headers: Mapping[str, str], body: bytes, credentials: ReadOnlyCredentials,
                 region: str, service: str = "bedrock") -> None:
    """Raise `Refused` unless `headers["Authorization"]` is the SigV4 signature of this request, recomputed
    by botocore from what was received with the credentials the service knows."""
    headers = {name.lower(): value for name, value in headers.items()}
    authorization = headers.get("authorization", "")
    if not authorization.startswith("AWS4-HMAC-SHA256 "):
        raise Refused("not a SigV4 Authorization header")
    fields = dict(part.strip().split("=", 1) for part in authorization.removeprefix("AWS4-HMAC-SHA256 ").split(","))
    access_key, day, scope_region, scope_service, terminator = fields["Credential"].split("/")
    if access_key != credentials.access_key:
        raise Refused("unknown access key")
    if (scope_region, scope_service, terminator) != (region, service, "aws4_request"):
        raise Refused(f"wrong credential scope {fields['Credential']}")
    stamp = headers.get("x-amz-date", "")
    signed_at = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    if abs(datetime.datetime.now(datetime.UTC) - signed_at) > SIGV4_MAX_SKEW or stamp[:8] != day:
        raise Refused("signature expired or not yet valid")
    signed = fields["SignedHeaders"].split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        raise Refused("host and x-amz-date must be signed")
    if credentials.token and headers.get("x-amz-security-token") != credentials.token:
        raise Refused("missing or wrong security token")
    request = AWSRequest(method=method, url=url, data=body, headers={name: headers[name] for name in signed})
    request.context["timestamp"] = stamp
    signer = SigV4Auth(credentials, service, region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, fields["Signature"]):
        raise Refused("The request signature we calculated does not match the signature you provided.")


Check = Callable[[web.Request, bytes], None]


@contextlib.asynccontextmanager
async def front_door(upstream: str, check: Check) -> AsyncIterator[str]:
    """A server that runs `check` on every request (403 with its message when it raises `Refused`) and
    relays the rest to `upstream` (the simulator), streaming the answer back. Yields its root URL."""
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        async def relay(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            try:
                check(request, body)
            except Refused as exc:
                return web.json_response({"message": str(exc)}, status=403)
            headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
            async with session.request(request.method, upstream + request.raw_path, headers=headers,
                                       data=body) as answer:
                response = web.StreamResponse(status=answer.status, headers={
                    k: v for k, v in answer.headers.items()
                    if k.lower() not in ("content-length", "transfer-encoding", "connection")})
                await response.prepare(request)
                async for data in answer.content.iter_any():
                    await response.write(data)
                await response.write_eof()
                return response

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", relay)
        async with serve(app) as url:
            yield url


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


def _b64url(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


class TokenEndpoint:
    """Google's OAuth2 token endpoint for one test service account: it verifies the JWT assertion's RS256
    signature with the account's public key and its claims, and issues access tokens that `valid` accepts."""

    def __init__(self, lifetime: int = 3600) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.email = "crossroads-test@test-project.iam.gserviceaccount.com"
        self.lifetime = lifetime
        self.issued: list[str] = []
        self.url = ""

    def service_account(self, path: Path) -> Path:
        """Write the account's JSON key file (as the Cloud console downloads it) to `path`."""
        pem = self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()
        path.write_text(json.dumps({
            "type": "service_account", "project_id": "test-project", "private_key_id": "k1", "private_key": pem,
            "client_email": self.email, "client_id": "1", "token_uri": self.url + "/token",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth"}))
        return path

    def valid(self, token: str) -> bool:
        return token in self.issued

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        try:
            if form.get("grant_type") != JWT_BEARER:
                raise Refused("unsupported grant_type")
            header, payload, signature = str(form["assertion"]).split(".")
            self.key.public_key().verify(_b64url(signature), f"{header}.{payload}".encode(), padding.PKCS1v15(),
                                         hashes.SHA256())
            if json.loads(_b64url(header)).get("alg") != "RS256":
                raise Refused("not RS256")
            claims = json.loads(_b64url(payload))
            now = time.time()
            if claims["iss"] != self.email or claims["aud"] != GOOGLE_TOKEN_AUDIENCE:
                raise Refused("wrong issuer or audience")
            if CLOUD_PLATFORM not in claims.get("scope", "").split() or not claims["iat"] - 60 <= now < claims["exp"]:
                raise Refused("wrong scope or expired assertion")
        except Exception as exc:
            return web.json_response({"error": "invalid_grant", "error_description": str(exc)}, status=400)
        token = "ya29.test-" + secrets.token_urlsafe(16)
        self.issued.append(token)
        return web.json_response({"access_token": token, "expires_in": self.lifetime, "token_type": "Bearer"})

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[TokenEndpoint]:
        app = web.Application()
        app.router.add_post("/token", self._token)
        async with serve(app) as url:
            self.url = url
            yield self


def bearer_check(tokens: TokenEndpoint) -> Check:
    def check(request: web.Request, body: bytes) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not tokens.valid(token):
            raise Refused("Request had invalid authentication credentials.")
    return check


def sigv4_check(credentials: ReadOnlyCredentials, region: str) -> Check:
    def check(request: web.Request, body: bytes) -> None:
        url = f"http://{request.headers['Host']}{request.raw_path}"
        verify_sigv4(request.method, url, request.headers, body, credentials, region)
    return check


def aws_environment(credentials: ReadOnlyCredentials, tmp: Path) -> dict[str, str]:
    """Environment variables that make botocore's chain find exactly these credentials (and nothing from
    this machine's files or instance metadata)."""
    env = {"AWS_ACCESS_KEY_ID": credentials.access_key, "AWS_SECRET_ACCESS_KEY": credentials.secret_key,
           "AWS_CONFIG_FILE": str(tmp / "no-aws-config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-creds"),
           "AWS_EC2_METADATA_DISABLED": "true"}
    if credentials.token:
        env["AWS_SESSION_TOKEN"] = credentials.token
    return env


__all__ = ["Refused", "TokenEndpoint", "aws_environment", "bearer_check", "front_door", "serve", "sigv4_check",
           "verify_sigv4"]


