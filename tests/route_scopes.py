"""The API key scopes each REST route takes, stated here by hand for test_api_keys.py (not read from
gateway/backends.py, which renders them): a wrong mapping there fails the test instead of passing it."""
TRAIN, READ_OR_TRAIN, GENERATE, READ_OR_GENERATE = {"train"}, {"read", "train"}, {"generate"}, {"read", "generate"}
# A `read` key follows jobs and adapters and lists models, but a key's files and fine-tuning jobs take `train` alone.
SCOPES = {
    ("POST", "/llm/train_sft"): TRAIN, ("POST", "/llm/train_rl"): TRAIN,
    ("GET", "/llm/jobs"): READ_OR_TRAIN, ("GET", "/llm/jobs/{job_id}"): READ_OR_TRAIN,
    ("POST", "/llm/jobs/{job_id}:cancel"): TRAIN, ("GET", "/llm/jobs/{job_id}/events"): READ_OR_TRAIN,
    ("GET", "/llm/adapters"): READ_OR_TRAIN, ("GET", "/llm/adapters/{name}"): READ_OR_TRAIN,
    ("POST", "/llm/adapters/{name}:serve"): TRAIN, ("DELETE", "/llm/adapters/{name}/versions/{version}"): TRAIN,
    ("DELETE", "/llm/adapters/{name}"): TRAIN,
    ("POST", "/generate"): GENERATE, ("POST", "/generate_text"): GENERATE, ("POST", "/generate_with_rnn"): GENERATE,
    ("POST", "/generate_with_llm"): GENERATE, ("POST", "/generate_with_llm/stream"): GENERATE,
    ("GET", "/llm/status"): READ_OR_GENERATE,
    ("POST", "/v1/files"): TRAIN, ("GET", "/v1/files"): TRAIN, ("GET", "/v1/files/{file_id}"): TRAIN,
    ("GET", "/v1/files/{file_id}/content"): TRAIN, ("DELETE", "/v1/files/{file_id}"): TRAIN,
    ("POST", "/v1/fine_tuning/jobs"): TRAIN, ("GET", "/v1/fine_tuning/jobs"): TRAIN,
    ("GET", "/v1/fine_tuning/jobs/{fine_tuning_job_id}"): TRAIN,
    ("POST", "/v1/fine_tuning/jobs/{fine_tuning_job_id}/cancel"): TRAIN,
    ("GET", "/v1/fine_tuning/jobs/{fine_tuning_job_id}/events"): TRAIN,
    ("DELETE", "/v1/models/{model}"): TRAIN,
    ("POST", "/v1/chat/completions"): GENERATE, ("POST", "/v1/completions"): GENERATE,
    ("GET", "/v1/models"): READ_OR_GENERATE, ("GET", "/v1/models/{model}"): READ_OR_GENERATE,
    ("POST", "/tokenize"): GENERATE, ("POST", "/detokenize"): GENERATE,
    ("POST", "/v1/responses"): GENERATE, ("GET", "/v1/responses/{response_id}"): READ_OR_GENERATE,
    ("DELETE", "/v1/responses/{response_id}"): GENERATE,
}
