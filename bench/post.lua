-- POST /tareas, a distinct titulo per request: thread number and a per-thread count.
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("tid", threads)
end
local n = 0
request = function()
    n = n + 1
    local body = string.format('{"titulo":"wrk-%d-%d","cliente":"bench"}', tid, n)
    return wrk.format("POST", "/tareas", {["Content-Type"] = "application/json"}, body)
end
