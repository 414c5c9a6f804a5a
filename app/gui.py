"""Starting and stopping the Qt application deterministically (worker first, then windows, then exit)."""
from __future__ import annotations

import os
import signal as os_signal
import sys

from .cli import UserFacingError, configs_from_args, load_signal_or_fail


def run_gui(args) -> int:

    from dataclasses import replace

    from models.scenes import DEFAULT_FIELD, DEFAULT_SIZE, DEFAULT_TRAIN, Scene

    from .cli import growth_scene_from_args
    from .crop_cli import crop_settings_from_args

    from models.video import is_video_source

    if getattr(args, "session", None):
        return _run_with_window(args, *_session_window_arguments(args))
    video_size = args.size  # None: a video's own working size (an image's would be far too big to train live)
    if args.size is None:
        from models.scenes import DEFAULT_SWEEP_SIZE

        args.size = DEFAULT_SWEEP_SIZE if args.preset == "sweep" else DEFAULT_SIZE
    signal = load_signal_or_fail(args.signal, video_size if is_video_source(args.signal) else args.size, args.target,
                                 args.frames)
    field, train = configs_from_args(args)
    try:
        if signal.time is not None:
            from .time_cli import time_scene_from_args

            scene = time_scene_from_args(args, field, train, signal, UserFacingError, for_gui=True)
            args.size = signal.shape[-1] if signal.kind == "video" else args.size
        elif args.preset == "sweep":
            from models.scenes import DEFAULT_SWEEP_SCENE

            base = DEFAULT_SWEEP_SCENE
            activation = args.model if args.model.startswith("finer") else "finer"
            field = replace(field, kind=activation, width=args.width if args.width != DEFAULT_FIELD.width else base.field.width,
                            bias_range=None)
            # a sweep's lr is SIREN's; the members scale it by their activation's default (models/scenes.py)
            train = replace(train, batch_size=0 if args.batch == DEFAULT_TRAIN.batch_size else args.batch,
                            lr=args.lr if args.lr is not None else base.train.lr)
            scene = replace(base, field=field, train=train, sweep=replace(base.sweep, activations=(activation,)))
        elif args.preset == "growth" or args.model == "streamable":
            scene = growth_scene_from_args(args, field, train)
        elif args.preset == "crop" or args.model in ("local-global", "siren-per-partition"):
            if args.model not in ("local-global", "siren-per-partition"):
                args.model = "local-global"
            scene = Scene(field=field, train=train, preset="crop", lr_override=args.lr is not None,
                          crop=crop_settings_from_args(args))
        else:
            if signal.kind == "sdf":
                from .sdf_cli import apply_3d_defaults

                field, train = apply_3d_defaults(args, field, train)
            scene = Scene(field=field, train=train, preset=args.preset, lr_override=args.lr is not None)
    except ValueError as exc:
        raise UserFacingError(str(exc)) from None
    return _run_with_window(args, signal, scene, args.size, not args.paused, args.signal, None)


def _session_window_arguments(args):
    """A saved session instead of a signal and a scene: ``fieldlab gui --session FILE``."""
    from models.session_file import SessionError
    from models.sessions import open_session, restored_runs

    try:
        opened = open_session(args.session)
        trainers = restored_runs(opened)
    except SessionError as exc:
        raise UserFacingError(str(exc)) from None
    source = opened.signal_ref.source if os.path.exists(opened.signal_ref.source) or os.sep not in opened.signal_ref.source \
        else opened.loaded_from
    size = opened.signal_ref.size or args.size or 64
    return opened.signal, opened.scene, size, not args.paused and bool(opened.view.get("running")), source, trainers


def _run_with_window(args, signal, scene, size, running, source, restore) -> int:
    from PySide6 import QtCore, QtWidgets

    from models.training import configure_cpu_threads

    from .main_window import MainWindow

    configure_cpu_threads(leave_one_for_gui=True)

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("FieldLab")
    # Python's cyclic garbage collector runs on whichever thread allocates: on the training thread it could free a
    # closed window's Qt objects while the GUI thread deletes others (a deadlock seen in the open-close test).
    # Collect on the GUI thread only, on a timer (pyqtgraph's recipe).
    from pyqtgraph.util.garbage_collector import GarbageCollector

    collector = GarbageCollector(interval=1.0)
    window = MainWindow(signal, scene, size, running=running, source=source, restore=restore)
    if args.time is not None:
        window.time_view.bar.set_time(args.time)
    window.show()

    # Ctrl+C in the terminal closes the window like the close button does.
    os_signal.signal(os_signal.SIGINT, lambda *_: window.close())
    heartbeat = QtCore.QTimer(interval=200)
    heartbeat.timeout.connect(lambda: None)  # lets Python see the signal while Qt's loop runs
    heartbeat.start()

    if args.screenshot:
        def capture() -> None:
            path = os.path.abspath(args.screenshot)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            window.grab().save(path)
            print(f"fieldlab: screenshot -> {path}")
            window.close()

        QtCore.QTimer.singleShot(int(args.screenshot_after * 1000), capture)

    app.exec()
    heartbeat.stop()
    collector.timer.stop()
    window.session.shutdown()
    window.deleteLater()
    app.processEvents()
    return 0
