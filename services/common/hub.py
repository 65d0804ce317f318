"""Whether the Hugging Face Hub can give us a model or a data set, decided within seconds: offline machines must not
spend a minute on the Hub's retries before falling back to what the project ships."""
import concurrent.futures
import os
import pathlib

from services.common.errors import first_line

CHECK_SECONDS = 5.0


def _cached(repo_id: str, repo_type: str) -> bool:
    from huggingface_hub import constants, try_to_load_from_cache

    if repo_type == "model":
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    # `datasets` keeps a loaded data set in its own cache; the Hub cache holds its files.
    folder = pathlib.Path(constants.HF_HUB_CACHE) / f"datasets--{repo_id.replace('/', '--')}" / "snapshots"
    return folder.is_dir() and any(folder.iterdir())


def _ask_hub(repo_id: str, repo_type: str, seconds: float) -> None:
    from huggingface_hub import HfApi

    HfApi().repo_info(repo_id, repo_type=repo_type, timeout=seconds)


def availability(repo_id: str, repo_type: str = "model", seconds: float = CHECK_SECONDS) -> str | None:
    """None when `repo_id` can be loaded here (in the local cache, or the Hub answers within `seconds`); otherwise
    why not, in a few words."""
    if _cached(repo_id, repo_type):
        return None
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return "HF_HUB_OFFLINE is set and it is not in the local Hugging Face cache"
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-check")
    try:
        # The call has its own timeout; the pool's bound also covers a name lookup that hangs.
        pool.submit(_ask_hub, repo_id, repo_type, seconds).result(timeout=seconds)
        return None
    except concurrent.futures.TimeoutError:
        return f"the Hugging Face Hub did not answer within {seconds:.0f} s"
    except Exception as error:  # connection refused, no DNS, 401, 404...: all mean "not from here"
        return f"the Hugging Face Hub cannot be reached ({first_line(error, 160)})"
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
