"""Where the build service is: an explicit setting, or the JupyterHub service of this server.

Inside a JupyterHub single-user server the Hub gives every server its API URL and a token
(``JUPYTERHUB_API_URL``, ``JUPYTERHUB_API_TOKEN``). The Hub's service model
(``GET {api}/services/{name}``) holds the service's internal ``url`` and its ``prefix``; the
service answers under ``url + prefix`` and accepts the server's token when the operator granted
``access:services!service=<name>`` (``imagebuild_nb.service.hub.configure_hub`` does).

An explicit ``remote_url`` always wins, with ``remote_token``: the Hub's token is never sent to
a URL the user typed.

>>> endpoint = find_service(Settings(remote_url="http://build:8890", remote_token="t"), environ={})
>>> endpoint.url, endpoint.token, endpoint.from_hub
('http://build:8890', 't', False)
>>> hub = {"JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api", "JUPYTERHUB_API_TOKEN": "..."}
>>> find_service(Settings(), hub).url     # GET .../hub/api/services/imagebuild # doctest: +SKIP
'http://127.0.0.1:8890/services/imagebuild'
"""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from imagebuild_nb.errors import BuilderUnavailableError, SpecError
from imagebuild_nb.settings import Settings

API_URL = "JUPYTERHUB_API_URL"
API_TOKEN = "JUPYTERHUB_API_TOKEN"
HUB_TIMEOUT = 5.0  # the Hub answers a service model at once; a silent Hub must not hang a build

NOT_CONFIGURED_HINT = (
    "start the service on a host with Docker (`jupyter imagebuild --port 8890`) and set "
    "IMAGEBUILD_NB_REMOTE_URL / IMAGEBUILD_NB_REMOTE_TOKEN, or build with builder='local' "
    "(inside a JupyterHub server the Hub's 'imagebuild' service is found by itself)"
)
_ELSEWHERE = ("or set IMAGEBUILD_NB_REMOTE_URL (and IMAGEBUILD_NB_REMOTE_TOKEN) to reach a "
              "build service directly")


@dataclass(frozen=True)
class ServiceEndpoint:
    """The build service's base URL, the token to send it, and where both came from.

    ``pages_origin`` is where a browser opens the build pages: ``None`` for ``url`` itself, ""
    for a path on the browser's own origin (the Hub's proxy, which serves the notebook too).
    """

    url: str
    token: str | None = field(default=None, repr=False)
    origin: str = "the remote_url setting (IMAGEBUILD_NB_REMOTE_URL)"
    pages_origin: str | None = None
    # The Hub's internal-SSL files, for a service URL that is https inside the Hub.
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    hub_api: str | None = None  # the JupyterHub API it was found through

    @property
    def from_hub(self) -> bool:
        return self.hub_api is not None


def in_hub(environ: Mapping[str, str] | None = None) -> bool:
    """True inside a JupyterHub single-user server (the Hub gave it an API URL and a token)."""
    environ = os.environ if environ is None else environ
    return bool(environ.get(API_URL) and environ.get(API_TOKEN))


def find_service(settings: Settings, environ: Mapping[str, str] | None = None, *,
                 timeout: float = HUB_TIMEOUT) -> ServiceEndpoint:
    """The build service to use; ``BuilderUnavailableError`` naming the problem and the fix."""
    environ = os.environ if environ is None else environ
    if settings.remote_url:
        return ServiceEndpoint(settings.remote_url.rstrip("/"), settings.remote_token)
    if not in_hub(environ):
        raise BuilderUnavailableError("no build service is configured", hint=NOT_CONFIGURED_HINT)
    name = settings.hub_service
    if not name or "/" in name:
        raise SpecError(f"hub_service={name!r} is not a JupyterHub service name",
                        argument="hub_service",
                        hint="set IMAGEBUILD_NB_HUB_SERVICE to the service's name, e.g. imagebuild")
    api, token = environ[API_URL].rstrip("/"), environ[API_TOKEN]
    key = (api, token, name)
    with _lock:
        cached = _found.get(key)
    if cached is not None:
        return cached
    endpoint = _ask_hub(api, token, name, environ, timeout)
    with _lock:
        _found[key] = endpoint
    return endpoint


# Successes only, per process: the Hub is asked once per (API URL, token, service name).
_found: dict[tuple[str, str, str], ServiceEndpoint] = {}
_lock = threading.Lock()


def _ask_hub(api: str, token: str, name: str, environ: Mapping[str, str],
             timeout: float) -> ServiceEndpoint:
    context = _hub_ssl(environ)
    where = f"{api}/services/{quote(name, safe='')}"
    origin = f"JupyterHub service {name!r} ({api})"
    try:
        # trust_env=False: the Hub's API is internal; a proxy set for pip would not reach it.
        with httpx.Client(verify=context or True, timeout=timeout, trust_env=False) as http:
            response = http.get(where, headers={"Authorization": f"token {token}"})
    except httpx.TimeoutException:
        raise BuilderUnavailableError(
            f"the JupyterHub API at {api} did not answer within {timeout:g} s, so the build "
            f"service {name!r} cannot be looked up",
            hint=f"try again when the Hub answers, {_ELSEWHERE}") from None
    except httpx.TransportError as error:
        raise BuilderUnavailableError(
            f"the JupyterHub API at {api} is unreachable ({_short(error)}), so the build "
            f"service {name!r} cannot be looked up",
            hint=f"check that the Hub is running (this server's {API_URL}), {_ELSEWHERE}",
        ) from None
    if response.status_code in (403, 404):
        raise BuilderUnavailableError(
            f"the Hub has no service {name!r} visible to this server's token "
            f"({response.status_code} from {where}: {_hub_message(response)})",
            hint=(f"the operator adds it with imagebuild_nb.service.hub.configure_hub in "
                  f"jupyterhub_config.py (it grants read:services!service={name} and "
                  f"access:services!service={name} to server tokens); or set "
                  f"IMAGEBUILD_NB_HUB_SERVICE to the build service's name on this Hub, "
                  f"{_ELSEWHERE}"))
    if response.status_code == 401:
        raise BuilderUnavailableError(
            f"the Hub refused this server's token ({API_TOKEN}) asking for service {name!r}",
            hint=f"restart your server from the Hub's control panel, {_ELSEWHERE}")
    if response.status_code != 200:
        raise BuilderUnavailableError(
            f"the JupyterHub API answered {response.status_code} asking for service {name!r}: "
            f"{_hub_message(response)}", hint=f"try again later, {_ELSEWHERE}")
    model = _json(response)
    if "url" not in model:
        raise BuilderUnavailableError(
            f"the Hub lists service {name!r} but does not show its URL to this server's token",
            hint=(f"the operator grants read:services!service={name} to server tokens "
                  f"(imagebuild_nb.service.hub.configure_hub does), {_ELSEWHERE}"))
    if not model.get("url"):
        raise BuilderUnavailableError(
            f"the Hub's service {name!r} has no URL (a service registered without one "
            f"cannot be called)",
            hint=(f"the operator gives the service a url in c.JupyterHub.services "
                  f"(imagebuild_nb.service.hub.configure_hub does), {_ELSEWHERE}"))
    prefix = str(model.get("prefix") or "")
    return ServiceEndpoint(
        url=str(model["url"]).rstrip("/") + prefix.rstrip("/"),
        token=token,
        origin=origin,
        pages_origin=_public_origin(environ),
        ssl_context=context,
        hub_api=api,
    )


def _hub_ssl(environ: Mapping[str, str]) -> ssl.SSLContext | None:
    """The Hub's internal SSL (JupyterHub's HubAuth reads the same variables), if it has any."""
    certfile = environ.get("JUPYTERHUB_SSL_CERTFILE")
    keyfile = environ.get("JUPYTERHUB_SSL_KEYFILE")
    client_ca = environ.get("JUPYTERHUB_SSL_CLIENT_CA")
    if not (certfile or client_ca):
        return None
    try:
        context = ssl.create_default_context(cafile=client_ca or None)
        if certfile:
            context.load_cert_chain(certfile, keyfile or None)
    except (OSError, ssl.SSLError) as error:
        raise BuilderUnavailableError(
            f"the Hub's SSL files cannot be read ({_short(error)})",
            hint="check JUPYTERHUB_SSL_CERTFILE, JUPYTERHUB_SSL_KEYFILE and "
                 f"JUPYTERHUB_SSL_CLIENT_CA, {_ELSEWHERE}") from None
    return context


def _public_origin(environ: Mapping[str, str]) -> str:
    """Where the user's browser reaches the Hub's proxy; "" (the page's own origin) unless the
    Hub was given a public URL."""
    for variable in ("JUPYTERHUB_PUBLIC_HUB_URL", "JUPYTERHUB_PUBLIC_URL"):
        parts = urlsplit(environ.get(variable) or "")
        if parts.scheme and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
    return ""


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise BuilderUnavailableError(
            f"the JupyterHub API at {response.request.url} did not answer with a service model",
            hint=f"check {API_URL}, {_ELSEWHERE}")
    return data


def _hub_message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message") or response.reason_phrase)
    except (ValueError, AttributeError):
        return response.reason_phrase


def _short(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
