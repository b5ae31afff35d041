# SPDX-License-Identifier: GPL-3.0-or-later
"""One modal loop for long work (Estimate, Download Detector, Install Runtime).

The work is a step object (``Steps``): ``poll()`` advances it without blocking and
says whether it still runs. ``StepsOperator`` is the operator mixin that drives one:
a window-manager timer polls it, Esc cancels it, the progress bar and status text
(``WindowManager.p2p_progress``/``p2p_status`` and the status bar) show it, and the
operator reports at the end (``finish``). ``execute`` (scripts, background mode,
where timers never fire) polls the same steps to the end in a loop.

This module imports neither bpy nor another add-on module: it works on the
``context`` and ``event`` Blender passes in.
"""
from __future__ import annotations

import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Steps(Protocol):
    """Long work polled by a timer (``jobs.EstimateSteps``, ``jobs.CommandSteps``,
    ``jobs.ThreadSteps``). An optional ``kill()`` stops it at once when the operator
    itself is cancelled (a file load, Blender quitting); else ``cancel()`` is used."""

    def poll(self) -> bool:
        """Advance without blocking; True while the work still runs."""

    def cancel(self) -> None:
        """Stop as soon as the work allows (Esc)."""

    @property
    def fraction(self) -> float:
        """Progress, 0 .. 1."""

    @property
    def status_text(self) -> str:
        """One line saying what the work does now."""

    @property
    def finished(self) -> bool:
        """True once the work has ended (done, cancelled or failed)."""


def redraw(context) -> None:
    """Redraw the areas that show progress (the sidebar, the preferences)."""
    for win in getattr(context.window_manager, "windows", ()):
        for area in win.screen.areas:
            if area.type in ('VIEW_3D', 'PREFERENCES'):
                area.tag_redraw()


def set_status_bar(context, text) -> None:
    """The status bar's text (None: Blender's own again)."""
    ws = getattr(context, "workspace", None)
    if ws is not None:
        try:
            ws.status_text_set(text)
        except (AttributeError, RuntimeError, TypeError):
            pass


class StepsOperator:
    """Operator mixin (``class P2P_OT_x(StepsOperator, bpy.types.Operator)``) that runs
    a ``Steps`` object: ``invoke`` modally (timer, Esc, progress), ``execute`` to the end.

    A subclass gives ``make_steps(context)`` (the steps, or None after reporting why
    not) and ``finish(context, steps)`` (report the outcome; returns the operator's
    result set); optionally ``start_steps(context, steps)`` (called once before the
    first poll), ``timer_s`` (the poll interval) and ``run_interval`` (``execute``'s).
    """

    timer_s = 0.1
    run_interval = 0.05
    status_label = "Mocap"
    _timer = None
    _steps = None

    # -- what a subclass gives ---------------------------------------------------------
    def make_steps(self, context):
        raise NotImplementedError

    def finish(self, context, steps) -> set:
        raise NotImplementedError

    def start_steps(self, context, steps) -> None:
        pass

    # -- the loop ------------------------------------------------------------------------
    def execute(self, context):
        steps = self.make_steps(context)
        if steps is None:
            return {'CANCELLED'}
        self._steps = steps
        self.start_steps(context, steps)
        while steps.poll():
            time.sleep(self.run_interval)
        return self._end(context, steps)

    def invoke(self, context, event):
        steps = self.make_steps(context)
        if steps is None:
            return {'CANCELLED'}
        self._steps = steps
        self.start_steps(context, steps)
        wm = context.window_manager
        self._timer = wm.event_timer_add(self.timer_s, window=context.window)
        wm.modal_handler_add(self)
        self._show(context, steps)
        return {'RUNNING_MODAL'}

    def modal(self, context, event):
        steps = self._steps
        if event.type == 'ESC' and event.value == 'PRESS':
            if not steps.finished:
                steps.cancel()
            self._show(context, steps)
            return {'RUNNING_MODAL'}
        if event.type != 'TIMER' and not steps.finished:
            return {'PASS_THROUGH'}
        running = steps.poll()
        if running:
            self._show(context, steps)
            return {'PASS_THROUGH'}
        self._remove_timer(context)
        return self._end(context, steps)

    def cancel(self, context):
        """Blender ends the operator (a file load, quitting): stop the work now."""
        self._remove_timer(context)
        steps = self._steps
        if steps is not None:
            stop = getattr(steps, "kill", None) or steps.cancel
            stop()
        self._clear(context)

    # -- helpers -------------------------------------------------------------------------
    def _show(self, context, steps) -> None:
        wm = context.window_manager
        wm.p2p_progress = min(1.0, max(0.0, float(steps.fraction)))
        wm.p2p_status = steps.status_text
        set_status_bar(context, f"{self.status_label}: {steps.status_text}  (Esc to stop)")
        redraw(context)

    def _clear(self, context) -> None:
        wm = context.window_manager
        wm.p2p_progress = 0.0
        wm.p2p_status = ""
        set_status_bar(context, None)

    def _remove_timer(self, context) -> None:
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None

    def _end(self, context, steps) -> set:
        self._clear(context)
        result = self.finish(context, steps)
        redraw(context)
        return result
