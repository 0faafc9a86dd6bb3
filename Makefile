# The two commands of the README. Each does all set-up on a fresh machine.
.PHONY: demo test setup

demo:            ## set up, then run the main job on the embedded default model
	scripts/setup.sh
	.venv/bin/covey demo

test:            ## set up, then run every test (lint, Python suite, extension, editors)
	scripts/test.sh

setup:
	scripts/setup.sh
