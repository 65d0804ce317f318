"""Adapter affinity: Envoy sends the requests for one adapter to the same llm replica while that replica is healthy,
so that N replicas each hold about 1/N of the adapters instead of every replica loading every one in turn.
LLM_ADAPTER_AFFINITY=on (the default) renders it; off balances the llm replicas by least request, as before.

- The llm cluster balances by a ring hash of the request header `x-textgen-adapter` (every llm route's hash_policy).
- A gRPC client calling through Envoy names its adapter in that header itself: Envoy cannot read a protobuf body.
- For REST and OpenAI requests the gateway writes the header from the JSON body: the json_to_metadata filter reads
  the body's `adapter` and `use_rl_model` (/generate_with_llm and its stream) or `model` (/v1) into dynamic
  metadata, on a route matched by the REST path before transcoding (as the /v1 stream routing does), and a Lua
  script makes the header of them: the adapter named, or the one the llm picks when none is (`rl`, or `sft` with
  use_rl_model false). It replaces whatever header such a client sent.
- The base model (`base`), requests naming nothing and names no adapter can have (services.common.adapters'
  rule; it keeps the header's value valid) get no header: the ring hash then picks a replica at random, so
  base-model traffic still spreads over every replica. The base model named by its own name on /v1 is hashed as an
  adapter would be (Envoy does not know that name): its traffic goes to one replica.
- An unhealthy or ejected replica leaves the ring (health checks, outlier detection): its adapters go to the others
  until it is back. The price: one adapter's traffic is one replica's, however hot it is.
"""
from gateway import openai_routes
from gateway.http_rules import HttpBinding

VARIABLE = "LLM_ADAPTER_AFFINITY"
HEADER = "x-textgen-adapter"
NAMESPACE = "adapter_affinity"  # the dynamic metadata json_to_metadata writes and the Lua script reads
SCRIPT = "adapter_affinity"  # the Lua filter's source code of that name
BASE = "base"  # what names no adapter (services.common.adapters.BASE; a test holds them equal)
LLM_CLUSTER = "llm"
NATIVE_FIELDS = ("adapter", "use_rl_model")  # a native request's fields that decide its adapter
OPENAI_FIELD = "model"
LUA_SOURCE = f"""\
function envoy_on_request(handle)
  local body = handle:streamInfo():dynamicMetadata():get("{NAMESPACE}")
  if body == nil then return end
  local adapter = body.{OPENAI_FIELD} or body.adapter
  if (adapter == nil or adapter == "") and body.use_rl_model ~= nil then
    adapter = body.use_rl_model and "rl" or "sft"
  end
  if type(adapter) ~= "string" or #adapter > 64 or not adapter:match("^[%w][%w_.-]*$") or adapter == "{BASE}" then
    handle:headers():remove("{HEADER}")
  else
    handle:headers():replace("{HEADER}", adapter)
  end
end
"""


def enabled(environ) -> bool:
    raw = environ.get(VARIABLE, "on").strip().lower()
    if raw not in ("on", "off"):
        raise SystemExit(f"{VARIABLE}={raw!r}: say on (the requests for one adapter go to one llm replica) or off "
                         "(least request over every replica)")
    return raw == "on"


def _rule(field: str, value_type: str = "STRING", when_missing=None) -> dict:
    pair = {"metadata_namespace": NAMESPACE, "key": field, "type": value_type}
    rule = {"selectors": [{"key": field}], "on_present": pair}
    if when_missing is not None:
        rule["on_missing"] = {**pair, "value": when_missing}
    return rule


def _lua_script() -> dict:
    return {"@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute", "name": SCRIPT}


def _reads(rules: list[dict], http_filters: list[dict]) -> dict:
    """The per-route configuration of json_to_metadata and the Lua filter that writes the header from `rules`."""
    main = next(f["typed_config"] for f in http_filters if f["name"] == openai_routes.JSON_TO_METADATA)
    reading = {**main, "request_rules": {**main["request_rules"], "rules": rules}}
    return {openai_routes.JSON_TO_METADATA: reading, openai_routes.LUA: _lua_script()}


def _names_an_adapter(binding: HttpBinding) -> bool:
    fields = binding.method.input_type.fields_by_name
    return binding.body == "*" and all(field in fields for field in NATIVE_FIELDS)


def apply(config: dict, bindings: list[HttpBinding]) -> None:
    """Renders affinity into `config`, whose routes are complete: the llm cluster's ring hash, every llm route's
    hash policy, the Lua script, the body reading on the /v1 routes and one route per native REST binding that
    names an adapter (matched before transcoding, answered by the method's own route after it)."""
    cluster = next(c for c in config["static_resources"]["clusters"] if c["name"] == LLM_CLUSTER)
    cluster["lb_policy"] = "RING_HASH"
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    http_filters, routes = manager["http_filters"], manager["route_config"]["virtual_hosts"][0]["routes"]
    lua = next(f["typed_config"] for f in http_filters if f["name"] == openai_routes.LUA)
    lua["source_codes"][SCRIPT] = {"inline_string": LUA_SOURCE}
    for route in routes:
        if route.get("route", {}).get("cluster") == LLM_CLUSTER:
            route["route"]["hash_policy"] = [{"header": {"header_name": HEADER}}]
        elif route["match"].get("path_separated_prefix") == openai_routes.PREFIX:
            # Both /v1 routes: the body is read on the one matched first, the header written on the one matched
            # once the body is read (the stream route, when `stream` is true).
            filters = route["typed_per_filter_config"]
            filters[openai_routes.LUA] = _lua_script()
            if reading := filters.get(openai_routes.JSON_TO_METADATA):
                filters[openai_routes.JSON_TO_METADATA] = {**reading, "request_rules": {
                    **reading["request_rules"], "rules": [*reading["request_rules"]["rules"], _rule(OPENAI_FIELD)]}}
    native = _reads([_rule("adapter"), _rule("use_rl_model", "PROTOBUF_VALUE", when_missing=True)], http_filters)
    not_transcoded = {"status": 404, "body": {"inline_string": "served as JSON only"}}
    routes += [{"match": {"path": binding.path, "headers": [
                    {"name": ":method", "string_match": {"exact": binding.http_method}}]},
                "direct_response": not_transcoded, "typed_per_filter_config": native}
               for binding in bindings if _names_an_adapter(binding)]
