"""The add-on's one modal loop (``addon.modal.StepsOperator``) driving a fake ``Steps``:
to the end, cancelled with Esc, stopped when Blender ends the operator, and run to the
end by ``execute``. Blender's events and window manager are stand-ins here (headless
Blender never fires timers), so every branch of the loop runs."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.blender


class FakeSteps:
    """n polls to finish; Esc cancels; ``kill`` stops it at once."""

    def __init__(self, n: int = 3, *, killable: bool = True):
        self.n, self.i = n, 0
        self.polls = 0
        self.cancelled = self.killed = False
        if killable:
            self.kill = self._kill

    def poll(self) -> bool:
        self.polls += 1
        if not self.finished:
            self.i += 1
        return not self.finished

    def cancel(self) -> None:
        self.cancelled = True

    def _kill(self) -> None:
        self.killed = True

    @property
    def finished(self) -> bool:
        return self.cancelled or self.killed or self.i >= self.n

    @property
    def fraction(self) -> float:
        return self.i / self.n

    @property
    def status_text(self) -> str:
        return "stopping" if self.cancelled else f"step {self.i}/{self.n}"


class FakeWindowManager:
    def __init__(self):
        self.timers, self.removed, self.handlers = [], [], []
        self.windows = []
        self.p2p_progress, self.p2p_status = 0.0, ""

    def event_timer_add(self, step, window=None):
        timer = SimpleNamespace(step=step)
        self.timers.append(timer)
        return timer

    def event_timer_remove(self, timer):
        self.removed.append(timer)

    def modal_handler_add(self, op):
        self.handlers.append(op)


def _context():
    bar = []
    ws = SimpleNamespace(status_text_set=bar.append)
    return SimpleNamespace(window_manager=FakeWindowManager(), window=None, workspace=ws), bar


def _operator(steps):
    from pose2pose_mocap.addon.modal import StepsOperator

    class FakeOperator(StepsOperator):
        timer_s = 0.25
        run_interval = 0.0

        def __init__(self):
            self.reports, self.started = [], 0

        def report(self, level, message):
            self.reports.append((next(iter(level)), message))

        def make_steps(self, context):
            return steps

        def start_steps(self, context, s):
            self.started += 1

        def finish(self, context, s):
            if s.cancelled:
                self.report({'WARNING'}, f"cancelled at {s.i}")
                return {'CANCELLED'}
            self.report({'INFO'}, f"done in {s.i}")
            return {'FINISHED'}

    return FakeOperator()


TIMER = SimpleNamespace(type='TIMER', value='NOTHING')
ESC = SimpleNamespace(type='ESC', value='PRESS')
MOUSE = SimpleNamespace(type='MOUSEMOVE', value='NOTHING')


def test_modal_loop_drives_steps_to_the_end():
    steps = FakeSteps(3)
    op = _operator(steps)
    ctx, bar = _context()
    wm = ctx.window_manager
    assert op.invoke(ctx, None) == {'RUNNING_MODAL'}
    assert op.started == 1 and wm.handlers == [op] and len(wm.timers) == 1
    assert wm.timers[0].step == 0.25
    assert bar[-1] == "Mocap: step 0/3  (Esc to stop)"
    assert op.modal(ctx, MOUSE) == {'PASS_THROUGH'} and steps.polls == 0  # not a poll
    assert op.modal(ctx, TIMER) == {'PASS_THROUGH'}
    assert wm.p2p_progress == pytest.approx(1 / 3) and wm.p2p_status == "step 1/3"
    assert op.modal(ctx, TIMER) == {'PASS_THROUGH'}
    assert op.modal(ctx, TIMER) == {'FINISHED'}
    assert wm.removed == wm.timers                       # the timer is gone
    assert (wm.p2p_progress, wm.p2p_status, bar[-1]) == (0.0, "", None)
    assert op.reports == [('INFO', "done in 3")]


def test_esc_cancels_and_the_loop_reports_it():
    steps = FakeSteps(10)
    op = _operator(steps)
    ctx, bar = _context()
    wm = ctx.window_manager
    op.invoke(ctx, None)
    op.modal(ctx, TIMER)
    assert op.modal(ctx, ESC) == {'RUNNING_MODAL'}       # Esc is ours, not the scene's
    assert steps.cancelled and wm.p2p_status == "stopping"
    assert not wm.removed                                # the loop ends on the next tick
    assert op.modal(ctx, MOUSE) == {'CANCELLED'}         # finished: any event ends it
    assert wm.removed == wm.timers and bar[-1] is None and wm.p2p_status == ""
    assert op.reports == [('WARNING', "cancelled at 1")]
    assert not steps.killed


@pytest.mark.parametrize("killable", [True, False])
def test_blender_cancelling_the_operator_stops_the_steps(killable):
    steps = FakeSteps(10, killable=killable)
    op = _operator(steps)
    ctx, bar = _context()
    op.invoke(ctx, None)
    op.modal(ctx, TIMER)
    op.cancel(ctx)                                       # a file load, Blender quitting
    assert (steps.killed, steps.cancelled) == ((True, False) if killable else (False, True))
    assert ctx.window_manager.removed == ctx.window_manager.timers and bar[-1] is None
    assert op.reports == []                              # nothing reported, nothing imported


def test_execute_runs_the_steps_to_the_end_without_a_timer():
    steps = FakeSteps(4)
    op = _operator(steps)
    ctx, _bar = _context()
    assert op.execute(ctx) == {'FINISHED'}
    assert op.started == 1 and steps.i == 4 and not ctx.window_manager.timers
    assert op.reports == [('INFO', "done in 4")]


def test_make_steps_refusing_cancels_at_once():
    op = _operator(None)
    ctx, _bar = _context()
    assert op.invoke(ctx, None) == {'CANCELLED'} and op.execute(ctx) == {'CANCELLED'}
    assert not ctx.window_manager.timers and op.started == 0


def test_the_add_on_uses_the_one_loop(tmp_path):
    """Estimate, Download Detector and Install Runtime are StepsOperators; their step
    objects are Steps."""
    import time

    from pose2pose_mocap.addon import jobs, operators
    from pose2pose_mocap.addon.modal import Steps, StepsOperator

    for cls in (operators.P2P_OT_estimate, operators.P2P_OT_download_detector,
                operators.P2P_OT_install_runtime):
        assert issubclass(cls, StepsOperator), cls
        assert "modal" not in vars(cls) and "invoke" not in vars(cls), cls
    est = jobs.EstimateSteps({"inputs": "x"}, command=["unused"], log_path=tmp_path / "e.log")
    cmd = jobs.CommandSteps([], tmp_path / "c.log")
    thr = jobs.ThreadSteps(lambda progress, cancel: time.sleep(0.01) or "ok", label="Fetching")
    for s in (est, cmd, thr):
        assert isinstance(s, Steps), s
    thr.thread.join()
    assert thr.finished and thr.result == "ok" and thr.status_text == "Fetching: 0 MB"
