-- name: evaluations
-- description: Recent evaluations: jobset, when, how long checkout and evaluation took, and their size
-- param: since time 7d
-- param: limit int 50
SELECT e.id AS eval,
       j.project || ':' || j.name AS jobset,
       to_char(to_timestamp(e.timestamp) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS at_utc,
       e.checkouttime::int8 AS checkout_s,
       e.evaltime::int8 AS eval_s,
       e.nrbuilds::int8 AS builds,
       e.nrsucceeded::int8 AS succeeded,
       (e.hasnewbuilds = 1) AS has_new_builds
FROM jobsetevals e
JOIN jobsets j ON j.id = e.jobset_id
WHERE e.timestamp >= $1::int8
ORDER BY e.timestamp DESC
LIMIT $2::int8
-- offline:
SELECT e.id AS eval,
       j.project || ':' || j.name AS jobset,
       strftime(CAST(e.timestamp * 1000000 AS TIMESTAMP), '%Y-%m-%d %H:%M') AS at_utc,
       e.checkouttime::int8 AS checkout_s,
       e.evaltime::int8 AS eval_s,
       e.nrbuilds::int8 AS builds,
       e.nrsucceeded::int8 AS succeeded,
       (e.hasnewbuilds = 1) AS has_new_builds
FROM jobsetevals e
JOIN jobsets j ON j.id = e.jobset_id
WHERE e.timestamp >= $1
ORDER BY e.timestamp DESC
LIMIT $2
