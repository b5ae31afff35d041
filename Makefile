# Two entry points for a fresh clone (see README):
#   make demo   the main job: the sample clip -> take + .blend in demo/ (stand-in model
#               files are written to weights/ only when the real ones are not found)
#   make test   the test suite
# Both create .venv on first use with the pinned dependencies.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test clean-venv

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

demo: $(BIN)/.installed
	$(BIN)/p2p-mocap doctor --quiet || $(BIN)/p2p-mocap make-standins weights
	mkdir -p demo
	$(BIN)/p2p-mocap convert samples/wave.mp4 -o demo/

test: $(BIN)/.installed
	$(BIN)/python -m pytest

clean-venv:
	rm -rf $(VENV)

# The installable extension zip (dist/pose2pose_mocap-<version>.zip), built and
# validated with Blender's own blender_ext.py from the bpy wheel.
.PHONY: extension
extension: $(BIN)/.installed
	mkdir -p dist
	$(BIN)/python -m tools.extension_zip build . dist
