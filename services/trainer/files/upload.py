"""An upload's multipart/form-data body, received as Envoy hands it on (google.api.HttpBody messages of up to 1 MiB,
the first carrying the content type with its boundary), parsed as it arrives by python-multipart: the `file` part is
written straight to a temporary file, so the trainer holds about one message of it at a time, whatever its size."""
import dataclasses
import pathlib
from collections.abc import AsyncIterator

from python_multipart.multipart import MultipartParser, parse_options_header

FIELDS = ("file", "purpose")
MAX_PURPOSE_BYTES = 256
MAX_FILENAME_CHARS = 255


class UploadRefused(ValueError):
    """The body is not the form this call takes; the message says what is wrong, for a 400."""


class UploadTooLarge(ValueError):
    """The body exceeds the upload limit."""


@dataclasses.dataclass
class Upload:
    filename: str
    purpose: str
    size: int  # of the file's content


def boundary_of(content_type: str) -> bytes:
    try:
        kind, options = parse_options_header(content_type)
    except (UnicodeError, ValueError):  # a header value is Latin-1 at most
        kind, options = b"", {}
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise UploadRefused(f"the body must be multipart/form-data with a boundary (got content type "
                            f"{content_type[:80]!r}): send the fields file and purpose as a form, as "
                            "`curl -F purpose=fine-tune -F file=@data.jsonl` and the openai client do")
    return options[b"boundary"]


class _Form:
    """python-multipart's callbacks: the parts' names, the file's bytes to `out`, the purpose kept."""

    def __init__(self, out) -> None:
        self.out = out
        self.header_field, self.header_value = b"", b""
        self.disposition: dict[bytes, bytes] = {}
        self.seen: list[str] = []
        self.purpose = b""
        self.filename = ""
        self.size = 0
        self.ended = False

    def callbacks(self) -> dict:
        return {"on_part_begin": self._part_begin, "on_header_field": self._field, "on_header_value": self._value,
                "on_header_end": self._header_end, "on_part_data": self._data, "on_end": self._end}

    def _part_begin(self) -> None:
        self.disposition = {}

    def _field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def _value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def _header_end(self) -> None:
        if self.header_field.lower() == b"content-disposition":
            self.disposition = parse_options_header(self.header_value)[1]
            name = self.disposition.get(b"name", b"").decode("utf-8", "replace")
            if name not in FIELDS:
                raise UploadRefused(f"unknown form field {name[:60]!r}: this call takes the fields "
                                    f"{' and '.join(FIELDS)}")
            if name in self.seen:
                raise UploadRefused(f"the form field {name!r} is sent twice; send it once")
            self.seen.append(name)
            if name == "file":
                self.filename = self.disposition.get(b"filename", b"").decode("utf-8", "replace")[:MAX_FILENAME_CHARS]
        self.header_field, self.header_value = b"", b""

    def _data(self, data: bytes, start: int, end: int) -> None:
        if not self.seen:
            raise UploadRefused("a form part has no Content-Disposition naming its field")
        if self.seen[-1] == "file":
            self.out.write(data[start:end])
            self.size += end - start
        else:
            self.purpose += data[start:end]
            if len(self.purpose) > MAX_PURPOSE_BYTES:
                raise UploadRefused(f"the purpose field is longer than {MAX_PURPOSE_BYTES} bytes")

    def _end(self) -> None:
        self.ended = True


async def receive(messages: AsyncIterator, staged: pathlib.Path, max_bytes: int, write) -> Upload:
    """Parses the body of `messages` (HttpBody) into `staged` (the file's content); `write(function, *args)` runs
    each parsing step off the event loop. Raises UploadRefused or UploadTooLarge."""
    received = 0
    parser = form = None
    with open(staged, "wb") as out:
        async for message in messages:
            if parser is None:
                form = _Form(out)
                parser = MultipartParser(boundary_of(message.content_type), form.callbacks())
            received += len(message.data)
            if received > max_bytes:
                raise UploadTooLarge(f"the upload exceeds {max_bytes} bytes (MAX_UPLOAD_BYTES)")
            try:
                await write(parser.write, message.data)
            except UploadRefused:
                raise
            except Exception as error:  # python-multipart's MultipartParseError and kin: a malformed body
                raise UploadRefused(f"the multipart body is malformed: {error}") from None
    if parser is None:
        raise UploadRefused("the body is empty: send the fields file and purpose as multipart/form-data")
    if not form.ended:
        raise UploadRefused("the multipart body ends before its closing boundary: the upload was cut short")
    missing = [name for name in FIELDS if name not in form.seen]
    if missing:
        raise UploadRefused(f"the form has no {' and no '.join(missing)} field: send both file and purpose")
    return Upload(filename=form.filename or "file", purpose=form.purpose.decode("utf-8", "replace").strip(),
                  size=form.size)
