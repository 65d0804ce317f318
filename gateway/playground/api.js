// The public REST API through this page's own origin (Envoy), and what its errors say (docs/api.md, Errors).

const CODE_NAMES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
  "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
  "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"];

/**
 * An error answer: a google.rpc.Status body, with the fields its BadRequest details name; or, from the /v1 paths,
 * OpenAI's {"error": {message, type, param, code}}, its code (else its type) as the code's name.
 */
export class ApiError extends Error {
  constructor(httpStatus, status) {
    const openai = status.error && typeof status.error === "object" ? status.error : null;
    super((openai || status).message || `HTTP ${httpStatus}`);
    this.httpStatus = httpStatus;
    if (openai) {
      this.codeName = openai.code || openai.type || `HTTP ${httpStatus}`;
      this.fields = openai.param ? [{field: openai.param, description: openai.message}] : [];
      return;
    }
    this.codeName = CODE_NAMES[status.code] || `HTTP ${httpStatus}`;
    this.fields = (status.details || []).flatMap((detail) => detail.field_violations || [])
      .map((violation) => ({field: violation.field, description: violation.description}));
  }
}

async function errorOf(response) {
  const text = await response.text();
  let status;
  try {
    status = JSON.parse(text);
  } catch {
    status = null;
  }
  if (!status || typeof status !== "object") status = {message: text.trim() || response.statusText};
  return new ApiError(response.status, status);
}

// The API key the page's key field holds: in this module's memory only, sent with every call.
let apiKey = "";

export function useApiKey(key) {
  apiKey = key.trim();
}

async function send(method, path, {body, headers = {}, signal} = {}) {
  const init = {method, headers: {...bearer(apiKey), ...headers}, signal};
  if (body instanceof FormData) {
    init.body = body; // multipart/form-data, its boundary set by the browser
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["content-type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, {message: `the gateway did not answer ${method} ${path}: ${error.message}`});
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

/** One JSON answer; an error answer throws ApiError. */
export async function callJson(method, path, options) {
  return (await send(method, path, options)).json();
}

/**
 * A newline-delimited JSON stream, or with `events` server-sent events (`data: {json}` lines, as the /v1 paths
 * stream): onLine(object) as each arrives. Resolves to "complete" when the last one says it is the last (isLast),
 * otherwise to "cut": the stream ended or broke before its last line, which is how Envoy reports an error after
 * the first line (docs/api.md, Streams). An error before the first line throws.
 */
export async function streamLines(method, path, {isLast, onLine, events = false, ...options}) {
  const response = await send(method, path, options);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  let last = false;
  try {
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      pending += value;
      let end;
      while ((end = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, end).trim();
        pending = pending.slice(end + 1);
        if (!line) continue;
        const object = JSON.parse(events ? line.replace(/^data:/, "") : line);
        last = isLast(object);
        onLine(object);
      }
    }
  } catch (error) {
    if (error.name === "AbortError") throw error;
    return "cut"; // the connection closed before the last chunk
  }
  return last && !pending.trim() ? "complete" : "cut";
}

export function bearer(token) {
  return token ? {authorization: `Bearer ${token}`} : {};
}
