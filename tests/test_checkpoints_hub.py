"""Hub references against a real on-disk Hugging Face cache and a local stand-in for the Hub.

huggingface_hub reads HF_HUB_OFFLINE / HF_HUB_CACHE / HF_ENDPOINT when it is
imported, so each scenario runs ``resolve`` in a fresh Python process with
that environment: the same path a user's shell takes. Nothing here reaches the
internet: the cache is built on disk, and the "Hub" is a local HTTP server that
answers with the Hub's error headers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from checkpoint_factories import build_hf_cache, copy_checkpoint, set_adapter_base, tiny_world

from waits import HANG_S

from afterburn_core.checkpoints import resolve

REPO_ROOT = Path(__file__).resolve().parents[1]

RESOLVE_SCRIPT = """
import json, sys
from afterburn_core.checkpoints import resolve
from afterburn_core.errors import AfterburnError
results = {}
for reference in sys.argv[1:]:
    try:
        checkpoint = resolve(reference)
        results[reference] = {
            "kind": checkpoint.kind, "revision": checkpoint.revision, "root": checkpoint.root,
            "weight_files": list(checkpoint.weight_files), "fingerprint": checkpoint.fingerprint,
            "base_root": checkpoint.adapter_base.root if checkpoint.adapter_base else None,
        }
    except AfterburnError as error:
        results[reference] = {"error": type(error).__name__, "message": str(error)}
print(json.dumps(results))
"""


def resolve_in_subprocess(references: list[str], **environment: str) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(environment)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    completed = subprocess.run(
        [sys.executable, "-c", RESOLVE_SCRIPT, *references],
        env=env, cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=HANG_S,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    return tiny_world(tmp_path_factory.mktemp("tiny_world"))


@pytest.fixture(scope="module")
def hub_cache(world, tmp_path_factory):
    """A cache holding owner/name (tagged v1 too), owner/sharded and owner/lora (base: owner/name)."""
    cache = tmp_path_factory.mktemp("hf_home") / "hub"
    name_sha = build_hf_cache(cache, "owner/name", world.base, refs=("main", "v1"))
    sharded_sha = build_hf_cache(cache, "owner/sharded", world.sharded)
    adapter_source = copy_checkpoint(world.lora, tmp_path_factory.mktemp("lora_src") / "lora")
    set_adapter_base(adapter_source, "owner/name")
    lora_sha = build_hf_cache(cache, "owner/lora", adapter_source)
    return {"cache": cache, "name": name_sha, "sharded": sharded_sha, "lora": lora_sha}


def test_cache_layout_is_what_huggingface_hub_reads(hub_cache):
    """Cross-check the hand-built cache with huggingface_hub's own cache scanner."""
    from huggingface_hub import scan_cache_dir

    info = scan_cache_dir(hub_cache["cache"])
    assert not info.warnings
    repos = {repo.repo_id: repo for repo in info.repos}
    assert set(repos) == {"owner/name", "owner/sharded", "owner/lora"}
    revisions = {revision.commit_hash: revision for revision in repos["owner/name"].revisions}
    assert set(revisions) == {hub_cache["name"]}
    assert revisions[hub_cache["name"]].refs == frozenset({"main", "v1"})


def test_offline_cache_resolves_branch_tag_sha_shards_and_adapter(hub_cache, world):
    name_sha, cache = hub_cache["name"], hub_cache["cache"]
    references = ["owner/name", f"owner/name@{name_sha}", "owner/name@v1", "owner/sharded", "owner/lora", "owner/missing"]
    results = resolve_in_subprocess(references, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(cache))

    snapshot = cache / "models--owner--name" / "snapshots" / name_sha
    local_fingerprint = resolve(str(world.base)).fingerprint
    for reference in ("owner/name", f"owner/name@{name_sha}", "owner/name@v1"):
        result = results[reference]
        assert result["kind"] == "hub", result
        assert result["revision"] == name_sha
        assert result["root"] == str(snapshot)
        assert result["weight_files"] == [str(snapshot / "model.safetensors")]
        # Same bytes, same fingerprint: a cached hub model and a local copy share cached results.
        assert result["fingerprint"] == local_fingerprint

    sharded = results["owner/sharded"]
    assert sharded["kind"] == "hub" and sharded["revision"] == hub_cache["sharded"]
    assert len(sharded["weight_files"]) == len(list(world.sharded.glob("model-*.safetensors")))

    adapter = results["owner/lora"]
    assert adapter["kind"] == "adapter" and adapter["revision"] == hub_cache["lora"]
    assert adapter["base_root"] == str(snapshot)

    assert results["owner/missing"] == {
        "error": "CheckpointNotFound",
        "message": (
            f"owner/missing@main is not in the Hugging Face cache at {cache} and HF_HUB_OFFLINE=1 forbids "
            "downloading it; run once online or unset HF_HUB_OFFLINE."
        ),
    }


def test_offline_unknown_revision_of_a_cached_model(hub_cache):
    cache = hub_cache["cache"]
    results = resolve_in_subprocess(["owner/name@v2"], HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(cache))
    assert results["owner/name@v2"]["message"] == (
        f"owner/name@v2 is not in the Hugging Face cache at {cache} and HF_HUB_OFFLINE=1 forbids "
        "downloading it; run once online or unset HF_HUB_OFFLINE."
    )


def test_offline_snapshot_without_weights(world, tmp_path):
    cache = tmp_path / "hub"
    sha = build_hf_cache(cache, "owner/configonly", world.base, only=("config.json", "tokenizer.json"))
    results = resolve_in_subprocess(["owner/configonly"], HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(cache))
    snapshot = cache / "models--owner--configonly" / "snapshots" / sha
    assert results["owner/configonly"] == {
        "error": "CheckpointNotFound",
        "message": (
            f"the cached snapshot of owner/configonly@{sha} at {snapshot} holds no weight files and "
            "HF_HUB_OFFLINE=1 forbids downloading them; run once online or unset HF_HUB_OFFLINE."
        ),
    }


def test_hf_home_locates_the_cache(hub_cache):
    results = resolve_in_subprocess(["owner/name"], HF_HUB_OFFLINE="1", HF_HOME=str(hub_cache["cache"].parent))
    assert results["owner/name"]["revision"] == hub_cache["name"]


class _HubStandIn(BaseHTTPRequestHandler):
    """Answers the metadata request of ``snapshot_download`` the way the Hub answers errors."""

    ANSWERS = {
        "owner/gated": (401, {"X-Error-Code": "GatedRepo", "X-Error-Message": "Access to model owner/gated is restricted."}),
        "owner/private": (401, {"X-Error-Message": "Invalid credentials in Authorization header"}),
        "owner/nothing": (404, {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"}),
        "owner/name": (404, {"X-Error-Code": "RevisionNotFound", "X-Error-Message": "Invalid rev id: nobranch"}),
    }

    def do_GET(self):  # noqa: N802 (http.server's naming)
        status, headers = 404, {"X-Error-Code": "RepoNotFound"}
        for repo_id, answer in self.ANSWERS.items():
            if f"/api/models/{repo_id}/" in self.path or self.path.endswith(f"/api/models/{repo_id}"):
                status, headers = answer
        body = json.dumps({"error": headers.get("X-Error-Message", "error")}).encode()
        self.send_response(status)
        for key, value in {**headers, "Content-Type": "application/json", "Content-Length": str(len(body))}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture
def hub_stand_in():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HubStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_hub_errors_are_one_sentence_each(hub_stand_in, tmp_path):
    references = ["owner/gated", "owner/private", "owner/nothing", "owner/name@nobranch"]
    results = resolve_in_subprocess(references, HF_ENDPOINT=hub_stand_in, HF_HUB_CACHE=str(tmp_path / "hub"), HF_TOKEN="hf_test")
    messages = {reference: results[reference]["message"] for reference in references}
    assert all(results[reference]["error"] == "CheckpointNotFound" for reference in references), results
    assert messages == {
        "owner/gated": (
            "owner/gated is gated: accept its terms at https://huggingface.co/owner/gated and set a token "
            "in the HF_TOKEN environment variable (or log in with `hf auth login`)."
        ),
        "owner/private": "the Hugging Face Hub refused the token for owner/private (401); pass a valid token or unset HF_TOKEN.",
        "owner/nothing": (
            "owner/nothing is neither a folder here nor a model on the Hugging Face Hub you can access; "
            "check the spelling, or pass a token (HF_TOKEN) if it is private."
        ),
        "owner/name@nobranch": "owner/name has no revision 'nobranch'; give a branch, tag or commit sha that exists.",
    }


def test_no_network_is_one_sentence_and_cached_models_still_resolve(hub_cache, tmp_path):
    """With the Hub unreachable (a closed port) and HF_HUB_OFFLINE unset: cached models resolve
    from the cache at once, missing ones fail with one sentence."""
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    cache = hub_cache["cache"]
    results = resolve_in_subprocess(
        ["owner/name", "owner/missing"], HF_ENDPOINT=f"http://127.0.0.1:{closed_port}", HF_HUB_CACHE=str(cache)
    )
    assert results["owner/name"]["revision"] == hub_cache["name"]
    assert results["owner/missing"] == {
        "error": "CheckpointNotFound",
        "message": (
            f"the Hugging Face Hub could not be reached to fetch owner/missing@main and it is not complete in the "
            f"cache at {cache}; check the network connection (or HF_ENDPOINT / proxy settings) and try again."
        ),
    }
