-- name: queue-now
-- description: Builds in the queue now, per system type, with the oldest wait
SELECT b.system,
       count(*)::int8 AS queued,
       max(extract(epoch FROM now())::int8 - b.timestamp)::int8 AS oldest_wait_s,
       count(*) FILTER (WHERE b.globalpriority > 0)::int8 AS bumped
FROM builds b
WHERE b.finished = 0
GROUP BY b.system
ORDER BY queued DESC
-- offline:
-- "Now" is the end of the snapshot's recorded window.
SELECT b.system,
       count(*)::int8 AS queued,
       max($now - b.timestamp)::int8 AS oldest_wait_s,
       count(*) FILTER (WHERE b.globalpriority > 0)::int8 AS bumped
FROM builds b
WHERE b.finished = 0
GROUP BY b.system
ORDER BY queued DESC
