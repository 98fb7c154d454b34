"""Local stand-ins for the clouds' front doors, checking what the real services check before the simulator
answers: AWS Signature Version 4 (recomputed with botocore from the request as received), Google's OAuth2
token endpoint (a service-account JWT assertion, its RS256 signature verified), Microsoft Entra ID (a
service principal's client secret at the v2.0 token endpoint of an authority served over TLS, and App
Service's managed-identity endpoint), and the bearer tokens they issued."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import hmac
import ipaddress
import json
import secrets
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import aiohttp
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SIGV4_MAX_SKEW = datetime.timedelta(minutes=5)
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: How a client credential given as a signed assertion is named (RFC 7523), as Entra's federated credentials are.
JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
#: The audience Google's token endpoint requires of an assertion, wherever the key file says to post it.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


class Refused(Exception):
    """What the fake front door answers with: 403 and `{"message": ...}` unless the cloud says otherwise."""

    def __init__(self, message: str, status: int = 403, body: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"message": message} if body is None else body


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
                return web.json_response(exc.body, status=exc.status)
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
async def serve(app: web.Application, tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
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


#: The resource of Azure AI services' tokens, and the scope that asks for it (v2.0 endpoint).
COGNITIVE_SERVICES = "https://cognitiveservices.azure.com"
#: Azure OpenAI's answer to a missing, expired or foreign bearer token (from its API gateway, not in the
#: `{"error": ...}` shape of the service's own errors).
AZURE_UNAUTHORIZED = {"statusCode": 401, "message": "Unauthorized. Access token is missing, invalid, audience is "
                                                    "incorrect (https://cognitiveservices.azure.com), or have expired."}


def _entra_error(status: int, error: str, code: int, description: str) -> web.Response:
    """An error as the Microsoft identity platform's token endpoint answers it ("Error response" in "OAuth 2.0
    client credentials flow")."""
    return web.json_response({"error": error, "error_description": f"AADSTS{code}: {description}",
                              "error_codes": [code], "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
                              "trace_id": secrets.token_hex(16), "correlation_id": secrets.token_hex(16)},
                             status=status)


def _tls(tmp: Path) -> tuple[ssl.SSLContext, Path]:
    """A test certificate authority and a server certificate it signs for 127.0.0.1: the server's TLS
    context, and the CA's PEM file a client trusts."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Crossroads test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file, cert_file, key_file = tmp / "entra-ca.pem", tmp / "entra.pem", tmp / "entra-key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context, ca_file


class EntraID:
    """Microsoft Entra ID for one test service principal and one App Service managed identity.

    The authority (`authority`, served over TLS: azure-identity refuses a plain-http one; clients trust
    `ca_file`) answers the client-credentials grant at `/{tenant}/oauth2/v2.0/token` — the principal's secret,
    or the federated token of a pod with workload identity as its client assertion;
    scope `https://cognitiveservices.azure.com/.default` — and the managed-identity endpoint (`identity_endpoint`,
    plain http on the host as App Service's is) answers `GET ?api-version=2019-08-01&resource=...` when
    `X-IDENTITY-HEADER` is the secret App Service gives its app. Tokens last `lifetime` seconds; `valid` is
    what Azure OpenAI checks."""

    def __init__(self, tmp: Path, lifetime: int = 3600) -> None:
        self.tenant = "72f988bf-0000-4000-8000-00000000c0de"
        self.client_id = "1b7a1c5e-0000-4000-8000-0000c1e4d0e1"
        self.client_secret = "entra~test." + secrets.token_urlsafe(12)
        self.identity_header = secrets.token_hex(16)
        #: The service-account token Kubernetes projects into a pod with workload identity.
        self.federated_token = "eyJhbGciOiJSUzI1NiJ9.k8s-" + secrets.token_urlsafe(16)
        self.lifetime = lifetime
        #: Seconds each token request takes to answer.
        self.delay = 0.0
        #: Every token issued, in order, with the time it expires.
        self.issued: dict[str, float] = {}
        self.requests: list[str] = []
        #: The connections token requests came on (whether the client closes them).
        self.connections: list[asyncio.BaseTransport] = []
        self._tls, self.ca_file = _tls(tmp)
        self.authority = ""
        self.identity_endpoint = ""

    def valid(self, token: str) -> bool:
        return time.time() < self.issued.get(token, 0.0)

    def revoke(self) -> None:
        self.issued = dict.fromkeys(self.issued, 0.0)

    def environment(self) -> dict[str, str]:
        """The variables of the service principal (EnvironmentCredential) at this authority."""
        return {"AZURE_TENANT_ID": self.tenant, "AZURE_CLIENT_ID": self.client_id,
                "AZURE_CLIENT_SECRET": self.client_secret, "AZURE_AUTHORITY_HOST": self.authority}

    def workload_identity(self, tmp: Path) -> dict[str, str]:
        """The variables AKS's workload-identity webhook sets in a pod (its token file written to `tmp`)."""
        token_file = tmp / "azure-identity-token"
        token_file.write_text(self.federated_token)
        return {"AZURE_TENANT_ID": self.tenant, "AZURE_CLIENT_ID": self.client_id,
                "AZURE_FEDERATED_TOKEN_FILE": str(token_file), "AZURE_AUTHORITY_HOST": self.authority}

    def managed_identity(self) -> dict[str, str]:
        """The variables App Service sets for an app with a managed identity."""
        return {"IDENTITY_ENDPOINT": self.identity_endpoint, "IDENTITY_HEADER": self.identity_header}

    def _issue(self, lifetime: int) -> str:
        token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.test-" + secrets.token_urlsafe(16)
        self.issued[token] = time.time() + lifetime
        return token

    async def _token(self, request: web.Request) -> web.Response:
        if request.transport is not None and request.transport not in self.connections:
            self.connections.append(request.transport)
        await asyncio.sleep(self.delay)
        form = await request.post()
        federated = "client_assertion" in form
        self.requests.append("workload_identity" if federated else "client_credentials")
        if request.match_info["tenant"] != self.tenant:
            return _entra_error(400, "invalid_request", 90002, f"Tenant '{request.match_info['tenant']}' not found.")
        if form.get("grant_type") != "client_credentials":
            return _entra_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        if form.get("client_id") != self.client_id:
            return _entra_error(400, "unauthorized_client", 700016,
                                f"Application with identifier '{form.get('client_id')}' was not found.")
        if federated:
            if form.get("client_assertion_type") != JWT_BEARER_ASSERTION or not hmac.compare_digest(
                    str(form["client_assertion"]), self.federated_token):
                return _entra_error(401, "invalid_client", 70021, "No matching federated identity record found "
                                    "for presented assertion.")
        elif not hmac.compare_digest(str(form.get("client_secret", "")), self.client_secret):
            return _entra_error(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret "
                                "being sent in the request is the client secret value, not the client secret ID.")
        if form.get("scope") != COGNITIVE_SERVICES + "/.default":
            return _entra_error(400, "invalid_scope", 70011, f"The provided value for scope {form.get('scope')} "
                                "is not valid.")
        lifetime = self.lifetime
        return web.json_response({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                                  "access_token": self._issue(lifetime)})

    async def _managed_identity(self, request: web.Request) -> web.Response:
        self.requests.append("managed_identity")
        if request.transport is not None and request.transport not in self.connections:
            self.connections.append(request.transport)
        await asyncio.sleep(self.delay)
        if request.headers.get("X-IDENTITY-HEADER") != self.identity_header:
            return web.json_response({"statusCode": 401, "message": "Unauthorized"}, status=401)
        if request.query.get("api-version") != "2019-08-01" or request.query.get("resource") != COGNITIVE_SERVICES:
            return web.json_response({"statusCode": 400, "message": "Bad api-version or resource"}, status=400)
        lifetime = self.lifetime
        token = self._issue(lifetime)
        return web.json_response({"access_token": token, "expires_on": str(int(self.issued[token])),
                                  "resource": COGNITIVE_SERVICES, "token_type": "Bearer", "client_id": self.client_id})

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[EntraID]:
        authority, identity = web.Application(), web.Application()
        authority.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        identity.router.add_get("/msi/token", self._managed_identity)
        async with serve(authority, self._tls) as url, serve(identity) as identity_url:
            self.authority, self.identity_endpoint = url, identity_url + "/msi/token"
            yield self


def entra_check(entra: EntraID) -> Check:
    """Azure OpenAI behind Entra ID: a bearer token the tenant issued and that has not expired."""
    def check(request: web.Request, body: bytes) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not entra.valid(token):
            raise Refused(str(AZURE_UNAUTHORIZED["message"]), status=401, body=AZURE_UNAUTHORIZED)
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


__all__ = ["AZURE_UNAUTHORIZED", "COGNITIVE_SERVICES", "EntraID", "Refused", "TokenEndpoint", "aws_environment",
           "bearer_check", "entra_check", "front_door", "serve", "sigv4_check", "verify_sigv4"]


