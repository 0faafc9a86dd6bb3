-- Drives covey/nextEdit from headless Neovim 0.7: rename a parameter in the buffer, ask for
-- the next edit, apply the WorkspaceEdit it answers with Neovim's own function, accept it.
-- Inputs (environment): COVEY_PYTHON, COVEY_NVIM_ENGINE_URL, COVEY_NVIM_OUT (results JSON).

local out_path = os.getenv("COVEY_NVIM_OUT")
local results = {}

local function fail(msg)
  io.stderr:write("covey nvim next-edit flow failed: " .. msg .. "\n")
  vim.cmd("cquit 1")
end

local ok, err = pcall(function()
  local bufnr = vim.api.nvim_get_current_buf()
  vim.bo[bufnr].filetype = "python"
  local id = vim.lsp.start_client({
    name = "covey",
    cmd = { os.getenv("COVEY_PYTHON"), "-m", "covey_server" },
    root_dir = vim.fn.getcwd(),
    flags = { debounce_text_changes = 0 },
    init_options = {
      engine = { url = os.getenv("COVEY_NVIM_ENGINE_URL") },
      specialists = { ["next-edit"] = { minShowLogprob = "-inf" } },
    },
  })
  if not id then return fail("start_client returned nil") end
  vim.lsp.buf_attach_client(bufnr, id)
  local client
  local ready = vim.wait(30000, function()
    client = vim.lsp.get_client_by_id(id)
    return client ~= nil and client.server_capabilities ~= nil
  end, 50)
  if not ready then return fail("the server did not initialize") end

  -- "def fibonacci(n):" -> "def fibonacci(num):", as typing would leave it
  vim.api.nvim_buf_set_text(bufnr, 0, 14, 0, 15, { "num" })
  vim.wait(300, function() return false end, 50)  -- the didChange goes out
  local params = { textDocument = { uri = vim.uri_from_bufnr(bufnr) },
                   position = { line = 0, character = 17 } }
  local resp = vim.lsp.buf_request_sync(bufnr, "covey/nextEdit", params, 60000)
  local found = resp and resp[id] and resp[id].result
  if not found then return fail("no next edit: " .. vim.inspect(resp)) end
  results.range = found.range
  results.newText = found.newText
  vim.lsp.util.apply_workspace_edit(found.edit, "utf-16")
  local accepted = client.request_sync("workspace/executeCommand",
    { command = "covey.accept", arguments = { found.callId } }, 10000, bufnr)
  results.accepted = accepted and accepted.result and accepted.result.accepted
  results.buffer = table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), "\n")
  vim.lsp.stop_client(id)
end)

if not ok then
  fail(tostring(err))
else
  local fh = io.open(out_path, "w")
  fh:write(vim.fn.json_encode(results))
  fh:close()
  vim.cmd("qa!")
end
