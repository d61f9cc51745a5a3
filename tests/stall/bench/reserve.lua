-- wrk script: POST /reservations on one hot event, a new user per request.
-- EVENT (environment) is the event id; users count up from 1 in each thread
-- (run wrk with -t1, on a fresh event, so no request meets an earlier one).
local event = os.getenv("EVENT") or "1"
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
    n = n + 1
    return wrk.format(nil, "/reservations", nil,
                      string.format('{"eventId":%s,"userId":%d}', event, n))
end
