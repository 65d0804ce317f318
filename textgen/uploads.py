"""The largest upload POST /v1/files takes: one setting, read by the gateway (Envoy's body limit on that route,
gateway/targets.py) and by the trainer that receives it (services/trainer/config.py)."""
MAX_UPLOAD_BYTES_VARIABLE = "MAX_UPLOAD_BYTES"
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
