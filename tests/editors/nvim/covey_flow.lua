-- Drives the Covey language server from headless Neovim 0.7: completion, inline completion,
-- a docstring code action resolved through workspace/executeCommand -> workspace/applyEdit.
-- Inputs (environment): COVEY_PYTHON, COVEY_NVIM_ENGINE_URL, COVEY_NVIM_OUT (results JSON).
-- Any failure ends with `cquit 1` so the caller sees a non-zero exit.

local out_path = os.getenv("COVEY_NVIM_OUT")
local results = {}

local function fail(msg)
  io.stderr:write("covey nvim flow failed: " .. msg .. "\n")
  vim.cmd("cquit 1")
end

local function finish()
  local fh = io.open(out_path, "w")
  fh:write(vim.fn.json_encode(results))
  fh:close()
  vim.cmd("qa!")
end

local ok, err = pcall(function()
  local bufnr = vim.api.nvim_get_current_buf()
  vim.bo[bufnr].filetype = "python"
  local id = vim.lsp.start_client({
    name = "covey",
    cmd = { os.getenv("COVEY_PYTHON"), "-m", "covey_server" },
    root_dir = vim.fn.getcwd(),
    init_options = {
      engine = { url = os.getenv("COVEY_NVIM_ENGINE_URL") },
      debounceMs = 0,
      -- the confidence filter off: every answer is shown
      specialists = { completion = { promptFormat = "prefix", maxTokens = 24,
                                     minShowLogprob = "-inf" } },
    },
  })
  if not id then return fail("start_client returned nil") end
  vim.lsp.buf_attach_client(bufnr, id)
  local client
  local ready = vim.wait(30000, function()
    client = vim.lsp.get_client_by_id(id)
    return client ~= nil and client.server_capabilities ~= nil
      and client.server_capabilities.inlineCompletionProvider ~= nil
  end, 50)
  if not ready then return fail("the server did not initialize") end
  results.commands = client.server_capabilities.executeCommandProvider.commands

  -- the cursor after "return " in fibonacci (line and column from the caller's file)
  local lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  local row, col
  for i, line in ipairs(lines) do
    if line == "    return " then row, col = i - 1, #line end
  end
  if not row then return fail("no cursor line in the test file") end
  local pos = { textDocument = { uri = vim.uri_from_bufnr(bufnr) },
                position = { line = row, character = col } }

  local resp = vim.lsp.buf_request_sync(bufnr, "textDocument/completion", pos, 60000)
  local items = resp and resp[id] and resp[id].result and resp[id].result.items
  if not items or #items == 0 then return fail("no completion items") end
  results.completion = items[1].textEdit.newText

  local inline = vim.tbl_extend("force", pos, { context = { triggerKind = 1 } })
  resp = vim.lsp.buf_request_sync(bufnr, "textDocument/inlineCompletion", inline, 60000)
  items = resp and resp[id] and resp[id].result and resp[id].result.items
  if not items or #items == 0 then return fail("no inline completion items") end
  results.inline = items[1].insertText
  local accepted = client.request_sync("workspace/executeCommand", items[1].command, 10000, bufnr)
  results.accepted = accepted and accepted.result and accepted.result.accepted

  -- code action on the first function, then run its command: Neovim applies the edit
  local action_params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    range = { start = { line = 1, character = 4 }, ["end"] = { line = 1, character = 4 } },
    context = { diagnostics = {} },
  }
  resp = vim.lsp.buf_request_sync(bufnr, "textDocument/codeAction", action_params, 10000)
  local actions = resp and resp[id] and resp[id].result or {}
  local docstring
  for _, action in ipairs(actions) do
    if action.title:find("docstring") then docstring = action end
  end
  if not docstring then return fail("no docstring code action") end
  results.action = docstring.title
  local done = client.request_sync("workspace/executeCommand", docstring.command, 120000, bufnr)
  if not done or done.err then return fail("executeCommand failed: " .. vim.inspect(done)) end
  results.applied = done.result.applied
  results.reason = done.result.reason
  vim.wait(2000, function() return false end, 50)  -- let the applyEdit land
  results.buffer = table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), "\n")
  vim.lsp.stop_client(id)
end)

if not ok then fail(tostring(err)) else finish() end
