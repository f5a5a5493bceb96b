"""`calora reviewers ...`: the parent command for the reviewer engine's sub-commands.

The reviewer server adds `serve` here; `calora reviewers check-adapters` loads adapter folders the way
the engine will and reports what it would serve, without loading a base model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from reviewers.models import BASE_MODEL_HELP, DEFAULT_MAX_NEW_TOKENS, DEFAULT_MAX_SEQ_LEN


def register(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Add `reviewers` and return its sub-parsers, so other modules can add theirs."""
    reviewers = subparsers.add_parser("reviewers", help="the multi-adapter reviewer engine")
    commands = reviewers.add_subparsers(dest="reviewers_command", metavar="COMMAND", required=True)
    check = commands.add_parser(
        "check-adapters", help="read PEFT adapter folders as the engine would; print rank, scale and targets"
    )
    check.add_argument("folders", nargs="+", type=Path, help="folders written by PEFT save_pretrained")
    check.set_defaults(handler=run_check_adapters)
    add_serve(commands)
    return commands


def add_serve(commands: argparse._SubParsersAction) -> None:
    """`calora reviewers serve` (reviewers/serving/): the reviewer server for the GPU box."""
    serve = commands.add_parser(
        "serve", help="serve the base model and its adapters over HTTP (/v1/review, OpenAI-compatible /v1/...)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1; 0.0.0.0 to listen on all")
    serve.add_argument("--port", type=int, default=8001)
    serve.add_argument("--base-model", help=BASE_MODEL_HELP)
    serve.add_argument("--adapters", type=Path, default=Path("adapters"),
                       help="folder of per-reviewer PEFT adapters, served under the folder names")
    serve.add_argument("--served-model-name", help="the base model's name in /v1/models (default: its file name)")
    serve.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    serve.add_argument("--devices", help="one engine per device behind the one queue, each request to the least "
                       "loaded: 0,1 (CUDA indices), cuda:0,cuda:1 or cpu,cpu; overrides --device")
    serve.add_argument("--engines", choices=("processes", "threads"), default="processes",
                       help="with several --devices: each engine in its own process (default: engines do not "
                       "share one GIL) or as threads of the server")
    serve.add_argument("--max-batch", type=int, default=32, help="rows decoded together (KV-cache slots)")
    serve.add_argument("--max-seq-len", type=int, default=DEFAULT_MAX_SEQ_LEN, help="prompt + answer tokens per row")
    serve.add_argument("--max-queue", type=int, default=64, help="generations in flight before 429")
    serve.add_argument("--timeout", type=float, default=120.0, help="seconds per request before 504")
    serve.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS, help="default answer length cap")
    serve.add_argument("--retry-after", type=int, default=1, help="Retry-After seconds sent with 429")
    serve.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Load the engine here and inject it into the server, which imports no backend itself."""
    from reviewers.engine.backend import load_engine
    from reviewers.serving.app import run_server, served_name
    from reviewers.serving.pool import EnginePool, parse_devices
    from reviewers.serving.state import ServerSettings

    devices = parse_devices(args.devices) if args.devices else [args.device]
    engine_options = {"max_batch": args.max_batch, "max_seq_len": args.max_seq_len}
    if len(devices) > 1 and args.engines == "processes":
        from reviewers.engine.process import EngineProcess
        from reviewers.models import resolve_base_model

        ref = resolve_base_model(args.base_model)
        generator = EnginePool([EngineProcess(args.base_model, args.adapters, device=device, **engine_options)
                                for device in devices])
    else:
        loaded = [load_engine(args.base_model, args.adapters, device=device, **engine_options) for device in devices]
        ref = loaded[0][1]
        generator = EnginePool([engine for engine, _ in loaded]) if len(loaded) > 1 else loaded[0][0]
    options = ServerSettings(
        base_model=args.served_model_name or served_name(ref.source, ref.gguf_file), max_queue=args.max_queue,
        request_timeout_s=args.timeout, max_new_tokens=args.max_new_tokens, retry_after_s=args.retry_after,
    )
    return run_server(generator, options, host=args.host, port=args.port)


def run_check_adapters(args: argparse.Namespace) -> int:
    from reviewers.adapter_manifest import MANIFEST_FILE, read_manifest
    from reviewers.engine.lora import AdapterError, load_peft_adapter

    status = 0
    for folder in args.folders:
        try:
            adapter = load_peft_adapter(folder, folder.name)
        except AdapterError as exc:
            print(f"{folder}: NOT SERVABLE: {exc}")
            status = 1
            continue
        layers = sorted({layer for layer, _ in adapter.weights})
        manifest = read_manifest(folder)
        base = (f"trained on {manifest.base_model} (sha256 {(manifest.base_sha256 or 'unknown')[:12]})"
                if manifest else f"no {MANIFEST_FILE}: its base model cannot be checked")
        print(f"{folder}: rank {adapter.rank}, scale {adapter.scale:g}, targets "
              f"{','.join(sorted(adapter.target_modules))} on {len(layers)} layers; {base}")
    return status
