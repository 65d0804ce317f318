"""Uploads that do not finish: a trainer killed (SIGKILL) in the middle of receiving one leaves no half file listed,
and, restarted, has every file it stored before, byte for byte. Over gRPC, with the HttpBody messages Envoy would
send (the body in pieces, the content type on the first)."""
import signal
import threading
import time

import grpc
from google.api import httpbody_pb2
from textgen.v1 import files_pb2, files_pb2_grpc

from devtools.processes import free_port, start_service
from tests.fine_tuning_service import chat_lines

BOUNDARY = "upload-boundary"


def form(content: bytes) -> bytes:
    return (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n--{BOUNDARY}\r\n'
            f'Content-Disposition: form-data; name="file"; filename="data.jsonl"\r\n\r\n').encode() + content + \
        f"\r\n--{BOUNDARY}--\r\n".encode()


def pieces(body: bytes, size: int):
    for start in range(0, len(body), size):
        yield httpbody_pb2.HttpBody(content_type=f"multipart/form-data; boundary={BOUNDARY}" if not start else "",
                                    data=body[start: start + size])


def test_a_trainer_killed_mid_upload_lists_no_half_file_and_keeps_the_others(tmp_path):
    env = {"MODELS_DIR": str(tmp_path), "LLM_ADDR": f"127.0.0.1:{free_port()}"}
    stored = form(chat_lines(12))
    with start_service("services.trainer", env, "TRAINER_PORT") as trainer:
        channel = grpc.insecure_channel(trainer.address)
        files = files_pb2_grpc.FileServiceStub(channel)
        kept = files.CreateFile(pieces(stored, 100))
        sent_half = threading.Event()

        def half_then_wait():
            body = form(chat_lines(2000))
            yield from pieces(body[: len(body) // 2], 64 * 1024)
            sent_half.set()
            time.sleep(60)  # the trainer dies meanwhile

        call = files.CreateFile.future(half_then_wait())
        assert sent_half.wait(30)
        staging = tmp_path / "trainer" / "files"
        deadline = time.monotonic() + 10
        while not any(p.name.startswith(".upload-") and p.stat().st_size > 0 for p in staging.iterdir()):
            assert time.monotonic() < deadline, "the upload never reached the trainer"
            time.sleep(0.05)
        trainer.proc.send_signal(signal.SIGKILL)
        trainer.proc.wait()
        assert call.exception(timeout=30) is not None
        channel.close()
    with start_service("services.trainer", env, "TRAINER_PORT") as restarted:
        with grpc.insecure_channel(restarted.address) as channel:
            files = files_pb2_grpc.FileServiceStub(channel)
            listed = files.ListFiles(files_pb2.ListFilesRequest())
            assert [f.id for f in listed.data] == [kept.id]
            content = b"".join(m.data for m in files.GetFileContent(files_pb2.GetFileRequest(file_id=kept.id)))
            assert content == chat_lines(12)
    assert [p.name for p in staging.iterdir()] == [kept.id]  # the cut-short upload is gone from disk too
