# Two entry points for a fresh clone (see README, "Quick start"):
#   make demo   the main job: the sample clip -> take + .blend in demo/ (stand-in model
#               files are written to weights/ only when the real ones are not found)
#   make test   the test suite (the fast part; .ci/run runs the slow tests too)
# Both create .venv on first use with the pinned dependencies (pip's output goes to
# .venv/install.log; the terminal shows our lines only).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK = 1

.PHONY: demo test clean-venv

$(BIN)/.installed: pyproject.toml
	@echo "== setting up $(VENV): Python packages with the pinned versions (torch CPU, bpy 5.0.1;"
	@echo "   about 7 GB, several minutes; pip's log: $(VENV)/install.log)"
	@$(PYTHON) -m venv $(VENV)
	@{ $(BIN)/python -m pip install --upgrade pip && \
	   $(BIN)/python -m pip install -e ".[test]"; } > $(VENV)/install.log 2>&1 || \
	 { tail -n 15 $(VENV)/install.log; echo "== the install failed: see $(VENV)/install.log"; \
	   exit 1; }
	@touch $@

demo: $(BIN)/.installed
	@echo "== make demo: samples/wave.mp4 (90 frames) -> a take and a .blend in demo/"
	@state=$$($(BIN)/p2p-mocap doctor --quiet 2>/dev/null); \
	case "$$state" in \
	  "Result: ready") echo "   model files: the real ones (p2p-mocap doctor says ready)";; \
	  "Result: ready (with stand-ins)") \
	    echo "   model files: STAND-INs (no real model files yet): the pipeline runs end to end,"; \
	    echo "   but the motion will be MEANINGLESS";; \
	  *) echo "   no real model files yet (SMPL-X, Hand4Whole: licensed, download them yourself):"; \
	     echo "   writing STAND-INs to weights/ so the pipeline runs end to end;"; \
	     echo "   the motion will be MEANINGLESS (the real files: run $(BIN)/p2p-mocap doctor)"; \
	     $(BIN)/p2p-mocap make-standins weights > /dev/null || exit 1;; \
	esac
	@echo "== estimating on the CPU (several minutes), then building the rig"
	@$(BIN)/p2p-mocap convert samples/wave.mp4 -o demo/
	@echo "== done: open the .blend named on the 'wrote' line in Blender 5.0 or newer"
	@echo "   (Blender 4.2-4.5: convert --blender PATH, see docs/blender-versions.md)"

# The slow end-to-end tests (@pytest.mark.slow) run in .ci/run: pytest -m slow.
# Two pytest-xdist workers, a test file per worker at a time (module fixtures run once);
# each worker holds torch and bpy (~1.5 GB): make test TEST_WORKERS=4 on a bigger machine.
TEST_WORKERS ?= 2
test: $(BIN)/.installed
	$(BIN)/python -m pytest -m "not slow" -n $(TEST_WORKERS) --dist loadfile

clean-venv:
	rm -rf $(VENV)

# The installable extension zip (dist/pose2pose_mocap-<version>.zip), built and
# validated with Blender's own blender_ext.py from the bpy wheel.
.PHONY: extension
extension: $(BIN)/.installed
	mkdir -p dist
	$(BIN)/python -m tools.extension_zip build . dist
