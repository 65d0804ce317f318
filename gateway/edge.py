"""What the gateway's door needs that is only known where Envoy starts: the API keys and the TLS certificate. It
completes a rendered configuration (gateway/render.py) and uses the standard library only, so that the Envoy image
and pod run it as it is before Envoy starts:

    python3 edge.py --require-keys /etc/envoy/envoy.yaml /tmp/envoy.json    # compose and Kubernetes

make run and the tests apply it in gateway.render itself.

API keys come from the file API_KEYS_FILE names: a JSON list of {"name": ..., "key": ..., "scopes": [...]}. Unset
(make run on loopback, the tests' default): no check, open as before. Compose and Kubernetes refuse to start
without it. Set: Envoy's api_key_auth reads `Authorization: Bearer <key>` on every route that reaches a service.
- Scopes: each method's route lists those that may call it in its metadata (gateway/backends.py's scopes_of): no
  key or an unknown one → 401, a known key without the scope → 403.
- The caller's name goes upstream in CLIENT_HEADER (services log it); the key itself never does.
- Each key has a token bucket of its own in every rate limit (gateway/rate_limits.py), of the bucket's size.
- The public pages (/docs, /openapi.json, the playground's files: the direct responses of 200) are not checked.

TLS: with GATEWAY_TLS_CERT and GATEWAY_TLS_KEY (PEM files), the listener speaks HTTPS only (HTTP/2 and HTTP/1.1).
"""
import argparse
import copy
import json
import os
import pathlib
import re
import sys

KEYS_VARIABLE = "API_KEYS_FILE"
CERT_VARIABLE, KEY_VARIABLE = "GATEWAY_TLS_CERT", "GATEWAY_TLS_KEY"
FILTER = "envoy.filters.http.api_key_auth"
CLIENT_HEADER = "x-textgen-client"  # the caller's name as Envoy forwards it
SCOPES = ("generate", "train", "read")
METADATA_NAMESPACE, SCOPES_KEY = "textgen", "scopes"  # where a route lists the scopes that may call it
RATE_LIMIT_PREFIX = "rate_limit."  # gateway/rate_limits.py's filter names
NOBODY = "!nobody"  # allowed_clients may not be empty (that would allow every key): no name can be this one
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # fit for a header value and a rate limit descriptor


class EdgeError(SystemExit):
    """A key file or certificate Envoy cannot start with; the message says what to fix."""


def _problem(path, where: str, what: str) -> EdgeError:
    return EdgeError(f"{KEYS_VARIABLE}={path}: {where}: {what} (the file is a JSON list of "
                     '{"name": ..., "key": ..., "scopes": [...]} with scopes among ' + ", ".join(SCOPES) + ")")


def _entry(path, index: int, raw) -> dict:
    if not isinstance(raw, dict) or set(raw) != {"name", "key", "scopes"}:
        raise _problem(path, f"entry {index}", "needs exactly the fields name, key and scopes")
    name, key, scopes = raw["name"], raw["key"], raw["scopes"]
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise _problem(path, f"entry {index}", "name must be 1 to 64 letters, digits, '_', '.' or '-', starting "
                                               "with a letter or digit")
    if not isinstance(key, str) or len(key) < 16 or not key.isascii() or not key.isprintable() or " " in key:
        raise _problem(path, f"entry {index} ({name})", "key must be at least 16 printable ASCII characters "
                                                        "without spaces, e.g. from `openssl rand -hex 32`")
    if not isinstance(scopes, list) or not scopes or not set(scopes) <= set(SCOPES):
        raise _problem(path, f"entry {index} ({name})", f"scopes must be a non-empty list of {', '.join(SCOPES)}")
    return {"name": name, "key": key, "scopes": sorted(set(scopes))}


def load_keys(path: pathlib.Path) -> list[dict]:
    try:
        raw = json.loads(pathlib.Path(path).read_text())
    except OSError as error:
        raise EdgeError(f"{KEYS_VARIABLE}={path}: cannot read it: {error.strerror}") from None
    except ValueError as error:
        raise EdgeError(f"{KEYS_VARIABLE}={path}: not JSON: {error}") from None
    if not isinstance(raw, list) or not raw:
        raise _problem(path, "the top level", "must be a non-empty list")
    keys = [_entry(path, index, entry) for index, entry in enumerate(raw)]
    for field in ("name", "key"):
        if len({k[field] for k in keys}) != len(keys):
            raise _problem(path, "the list", f"two entries have the same {field}")
    return keys


def keys_from(environ) -> list[dict] | None:
    """The keys API_KEYS_FILE names; None where it is unset or empty (the gateway is then open)."""
    raw = environ.get(KEYS_VARIABLE, "").strip()
    return load_keys(pathlib.Path(raw)) if raw else None


def _manager(config: dict) -> dict:
    return config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def _per_client(rate_limit: dict, keys: list[dict]) -> None:
    """One token bucket per key in a rate limit filter: its route's bucket name and the caller's name."""
    limit = rate_limit["typed_config"]
    for entry in limit["rate_limits"]:
        entry["actions"].append({"request_headers": {"header_name": CLIENT_HEADER, "descriptor_key": "client"}})
    limit["descriptors"] = [{**descriptor, "entries": [*descriptor["entries"], {"key": "client", "value": k["name"]}]}
                            for descriptor in limit["descriptors"] for k in keys]


def apply_keys(config: dict, keys: list[dict] | None) -> dict:
    """`config` with the keys' check (None: `config` as it is, open)."""
    config = copy.deepcopy(config)
    manager = _manager(config)
    host = manager["route_config"]["virtual_hosts"][0]
    if keys is None:
        return config
    filters = manager["http_filters"]
    at = next(i for i, f in enumerate(filters) if f["name"].startswith(RATE_LIMIT_PREFIX) or f["name"].endswith(
        ".router"))
    # Envoy drops a leading "Bearer ". A route's own configuration replaces the filter's key sources and forwarding
    # (measured with Envoy 1.40: without them there, the key went upstream and the name did not), so each has them.
    reading = {"key_sources": [{"header": "authorization"}],
               "forwarding": {"header": CLIENT_HEADER, "hide_credentials": True}}
    filters.insert(at, {"name": FILTER, "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.api_key_auth.v3.ApiKeyAuth",
        "credentials": [{"key": k["key"], "client": k["name"]} for k in keys], **reading}})
    for rate_limit in filters:
        if rate_limit["name"].startswith(RATE_LIMIT_PREFIX):
            _per_client(rate_limit, keys)
    for route in host["routes"]:
        if "route" not in route:
            if route["direct_response"]["status"] == 200:  # a public page: /docs, /openapi.json, the playground
                route.setdefault("typed_per_filter_config", {})[FILTER] = {
                    "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": True}
            # Else a route chosen before transcoding (/v1, adapter affinity): Envoy decides whether a filter is
            # off by the first route, so the check stays on and reads the method route's clients after it.
            continue
        per_route = route.setdefault("typed_per_filter_config", {})
        scopes = set(route["metadata"]["filter_metadata"][METADATA_NAMESPACE][SCOPES_KEY])
        per_route[FILTER] = {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.api_key_auth.v3.ApiKeyAuthPerRoute",
            "allowed_clients": sorted(k["name"] for k in keys if scopes & set(k["scopes"])) or [NOBODY], **reading}
    return config


def apply_tls(config: dict, cert: str, key: str) -> dict:
    """`config` whose listener terminates TLS with the PEM files `cert` and `key`."""
    for path, variable in ((cert, CERT_VARIABLE), (key, KEY_VARIABLE)):
        if not pathlib.Path(path).is_file():
            raise EdgeError(f"{variable}={path}: no such file (a PEM certificate chain and its private key)")
    config = copy.deepcopy(config)
    chain = config["static_resources"]["listeners"][0]["filter_chains"][0]
    chain["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        "common_tls_context": {
            "alpn_protocols": ["h2", "http/1.1"],
            "tls_certificates": [{"certificate_chain": {"filename": str(cert)}, "private_key": {"filename": str(key)}}],
        }}}
    return config


def tls_from(environ) -> tuple[str, str] | None:
    cert, key = environ.get(CERT_VARIABLE, "").strip(), environ.get(KEY_VARIABLE, "").strip()
    if bool(cert) != bool(key):
        raise EdgeError(f"TLS needs both {CERT_VARIABLE} and {KEY_VARIABLE} (set: "
                        f"{CERT_VARIABLE if cert else KEY_VARIABLE} only)")
    return (cert, key) if cert else None


def complete(config: dict, environ) -> dict:
    """The configuration Envoy runs: `config` with the keys and the TLS the environment names."""
    config = apply_keys(config, keys_from(environ))
    if tls := tls_from(environ):
        config = apply_tls(config, *tls)
    return config


def describe(environ) -> str:
    """One line for the log: who may call the gateway, and how."""
    keys, tls = keys_from(environ), tls_from(environ)
    scheme = "https" if tls else "plain http"
    if keys is None:
        return f"API keys: none ({KEYS_VARIABLE} unset): every route is open to whoever reaches the port ({scheme})"
    return f"API keys: {len(keys)} from {environ[KEYS_VARIABLE]}: every route but the docs and the playground " \
           f"needs one ({scheme})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rendered", type=pathlib.Path, help="the rendered configuration (JSON, which YAML includes)")
    parser.add_argument("out", type=pathlib.Path, help="where to write the configuration Envoy runs")
    parser.add_argument("--require-keys", action="store_true", help=f"refuse to start without {KEYS_VARIABLE}")
    args = parser.parse_args()
    if args.require_keys and not os.environ.get(KEYS_VARIABLE, "").strip():
        raise EdgeError(f"{KEYS_VARIABLE} is unset: this gateway refuses to start without API keys (a JSON list of "
                        '{"name": ..., "key": ..., "scopes": [...]}; see docs/operations.md)')
    config = complete(json.loads(args.rendered.read_text()), os.environ)
    args.out.write_text(json.dumps(config))
    print(describe(os.environ), file=sys.stderr)


if __name__ == "__main__":
    main()
