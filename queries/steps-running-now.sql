-- name: steps-running-now
-- description: Steps in progress (busy), with their stage and how long they have run
SELECT s.build, s.stepnr, s.machine, s.system, s.busy,
       CASE s.busy WHEN 1 THEN 'preparing' WHEN 10 THEN 'connecting' WHEN 20 THEN 'sending inputs'
                   WHEN 30 THEN 'building' WHEN 35 THEN 'waiting for a local slot'
                   WHEN 40 THEN 'receiving outputs' WHEN 50 THEN 'post-processing'
                   ELSE 'other' END AS stage,
       (extract(epoch FROM now())::int8 - s.starttime)::int8 AS running_s,
       substring(s.drvpath from '[^/]*$') AS drv_path
FROM buildsteps s
WHERE s.busy <> 0
ORDER BY running_s DESC NULLS LAST
-- offline:
-- "Now" is the end of the snapshot's recorded window.
SELECT s.build, s.stepnr, s.machine, s.system, s.busy,
       CASE s.busy WHEN 1 THEN 'preparing' WHEN 10 THEN 'connecting' WHEN 20 THEN 'sending inputs'
                   WHEN 30 THEN 'building' WHEN 35 THEN 'waiting for a local slot'
                   WHEN 40 THEN 'receiving outputs' WHEN 50 THEN 'post-processing'
                   ELSE 'other' END AS stage,
       ($now - s.starttime)::int8 AS running_s,
       reverse(split_part(reverse(s.drvpath), '/', 1)) AS drv_path
FROM buildsteps s
WHERE s.busy <> 0
ORDER BY running_s DESC NULLS LAST
