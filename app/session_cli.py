"""``fieldlab session``, ``fieldlab bundle`` and ``fieldlab rebuild``: sessions and bundles from a terminal.

- ``fieldlab session FILE [--steps N] [--save OUT.fieldlab] [--out DIR]``: describe a session file, optionally
  train it on for N steps (exactly as the app would have), save it again and/or write its runs as 'fit' does.
- ``fieldlab bundle FILE --out DIR``: a reproducible bundle (app/bundle.py) from a session file.
- ``fieldlab rebuild BUNDLE --out DIR``: retrain a bundle's scene from its seeds and compare with its weights.
"""
from __future__ import annotations

import os
import sys

SESSION_COMMANDS = ("session", "bundle", "rebuild")


def add_session_commands(commands) -> None:
    session = commands.add_parser("session", help="describe, continue or export a saved session (.fieldlab)")
    session.add_argument("file", help="a session file saved by the app (File → Save session)")
    session.add_argument("--steps", type=int, default=0, help="train this many more steps first (default 0)")
    session.add_argument("--save", default=None, metavar="OUT.fieldlab", help="save the session (after --steps)")
    session.add_argument("--out", default=None, help="write every run as 'fieldlab fit' does into this folder")
    bundle = commands.add_parser("bundle", help="write a reproducible bundle from a saved session")
    bundle.add_argument("file", help="a session file (.fieldlab)")
    bundle.add_argument("--out", required=True, help="the bundle folder to write")
    rebuild = commands.add_parser("rebuild", help="retrain a bundle from its settings and seeds, headless")
    rebuild.add_argument("bundle", help="a bundle folder (File → Export → Reproducible bundle, or 'fieldlab bundle')")
    rebuild.add_argument("--out", required=True, help="folder for the rebuilt runs and rebuild.json")
    rebuild.add_argument("--threads", type=int, default=None,
                         help="CPU threads (default: the bundle's, so that sums are taken in the same order)")


def session_main(args) -> int:
    from models.session_file import SessionError

    from .bundle import BundleError
    from .cli import UserFacingError

    try:
        if args.command == "rebuild":
            return _rebuild(args)
        return _session(args) if args.command == "session" else _bundle(args)
    except (SessionError, BundleError) as exc:
        raise UserFacingError(str(exc)) from None


def _describe(opened, trainers) -> None:
    ref = opened.signal_ref
    print(f"{os.path.basename(opened.path)}: {opened.scene.preset} lab on {opened.signal.name} ({opened.signal.kind}, "
          f"{'x'.join(map(str, opened.signal.shape))}), source {ref.source}"
          + (" (embedded copy used)" if opened.loaded_from != ref.source else ""))
    for label, trainer in trainers:
        print(f"  {label}: {trainer.params:,} parameters, step {trainer.step_count}, "
              f"{trainer.seconds:.1f} s trained")


def _session(args) -> int:
    from models.sessions import open_session, restored_runs, save_runs_session
    from models.trainer_state import capture_runs

    from .cli import UserFacingError
    from .headless import save_runs

    if args.steps < 0:
        raise UserFacingError("--steps must be >= 0")
    opened = open_session(args.file)
    trainers = restored_runs(opened)
    _describe(opened, trainers)
    for step in range(args.steps):
        for _, trainer in trainers:
            trainer.step()
        if (step + 1) % 100 == 0 or step + 1 == args.steps:
            print(f"\r  trained {step + 1}/{args.steps} steps", end="", file=sys.stderr, flush=True)
    if args.steps:
        print(file=sys.stderr)
    if args.save:
        size = save_runs_session(args.save, opened.scene, opened.signal_ref, opened.signal, capture_runs(trainers),
                                 opened.view)
        print(f"saved {args.save} ({size / 1e6:.1f} MB)")
    if args.out:
        print(save_runs(args.out, trainers))
    return 0


def _bundle(args) -> int:
    from models.sessions import open_session, restored_runs
    from models.worker import TrainingWorker

    from .bundle import write_bundle

    opened = open_session(args.file)
    trainers = restored_runs(opened)
    _describe(opened, trainers)
    worker = TrainingWorker(opened.signal, lambda: trainers, start_running=False).start()
    snapshot = None
    try:  # the views' arrays, drawn exactly as the app draws them
        import time

        deadline = time.monotonic() + 120
        while snapshot is None or not snapshot.runs:
            snapshot = worker.latest.take() or snapshot
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        worker.stop()
    print(write_bundle(args.out, trainers, opened.scene, opened.signal_ref, opened.signal, snapshot=snapshot,
                       view=opened.view))
    return 0


def _rebuild(args) -> int:
    from .bundle import rebuild

    def progress(step: int, total: int) -> None:
        if step % 100 == 0 or step == total:
            print(f"\r  retrained {step}/{total} steps", end="", file=sys.stderr, flush=True)

    report = rebuild(args.bundle, args.out, args.threads, progress)
    print(file=sys.stderr)
    for run in report["runs"]:
        difference = run["max_weight_difference"]
        verdict = "bit-identical to the bundle's weights" if run["bit_identical"] else \
            "differs from the bundle's weights (" + \
            ("other shapes" if difference is None else f"max |dw| {difference:.3g}") + ")"
        psnr = "" if run["psnr_rebuilt"] is None else \
            f"; PSNR {run['psnr_rebuilt']:.2f} dB (bundle {run['psnr_saved']:.2f} dB)"
        print(f"  {run['label']}: {verdict}{psnr}")
    if report["interactive_edits"]:
        print(f"  note: the bundled session had {report['interactive_edits']} interactive edit(s), which a rebuild "
              "from the settings does not replay")
    print(f"rebuilt {report['steps']} steps in {report['seconds']:.1f} s -> {args.out}")
    return 0
