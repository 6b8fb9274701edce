-- wrk script: every request books a different free slot (a real booking, not a refusal).
-- bench/pages.py passes BOOK_PATH, BOOK_SLOTS (comma list), BOOK_CSRF and
-- BOOK_THREADS in the environment; thread i takes slots i, i+n, i+2n, … so none collide.
local thread_count = 0

function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  slots = {}
  for slot in string.gmatch(os.getenv("BOOK_SLOTS"), "[^,]+") do
    table.insert(slots, slot)
  end
  stride = tonumber(os.getenv("BOOK_THREADS"))
  position = thread_index + 1
  sent = 0
  path = os.getenv("BOOK_PATH")
  -- The confirmed step of the week picker: the kind of session is in BOOK_PATH (?type=).
  fixed = "csrf_token=" .. os.getenv("BOOK_CSRF") .. "&confirmed=1"
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

function request()
  local slot = slots[position]
  if slot == nil then
    slot = "1999-01-01T00:00Z" -- out of slots: refused, and counted as an error
  end
  position = position + stride
  sent = sent + 1
  local key = "bench-" .. thread_index .. "-" .. sent .. "-" .. math.random(1, 1000000000)
  local body = fixed .. "&slot=" .. slot:gsub(":", "%%3A") .. "&request_key=" .. key
  return wrk.format(nil, path, nil, body)
end
