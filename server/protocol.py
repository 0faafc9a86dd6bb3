"""Covey's own LSP vocabulary, in one place: the commands it registers and the
notifications and requests it adds (docs/lsp-protocol.md describes each)."""

# workspace/executeCommand
ACCEPT = "covey.accept"
REJECT = "covey.reject"
GENERATE_DOCSTRING = "covey.generateDocstring"
REFACTOR = "covey.refactor"
ENGINE_START = "covey.engineStart"
ENGINE_STOP = "covey.engineStop"

# server → client notifications
CALL_FINISHED = "covey/callFinished"
ENGINE_STATUS = "covey/engineStatus"

# client → server requests
USAGE_SUMMARY = "covey/usageSummary"
NEXT_EDIT = "covey/nextEdit"
