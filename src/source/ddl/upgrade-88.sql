-- hydra-bottleneck: schema version 87 → 88, as NixOS/hydra's migrations/upgrade-88.sql
-- (@ 2d5c3b80) changes it: every unix-time column widens from integer to bigint (times after
-- 2038). Durations (checkoutTime, evalTime, overhead) stay integer. Written for this tool from
-- the list of columns upstream widens; applied on top of hydra-87.sql. docs/hydra.md §1.

alter table Jobsets alter column errorTime type bigint;
alter table Jobsets alter column lastCheckedTime type bigint;
-- The scheduling trigger's WHEN clause names triggerTime, which blocks a type change: it is
-- dropped and made again around it.
drop trigger if exists JobsetSchedulingChanged on Jobsets;
alter table Jobsets alter column triggerTime type bigint;
create trigger JobsetSchedulingChanged after update on Jobsets for each row
    when (((old.triggerTime is distinct from new.triggerTime) and (new.triggerTime is not null))
          or (old.checkInterval != new.checkInterval)
          or (old.enabled != new.enabled))
    execute procedure notifyJobsetSchedulingChanged();
alter table Jobsets alter column startTime type bigint;

alter table Builds alter column timestamp type bigint;
alter table Builds alter column startTime type bigint;
alter table Builds alter column stopTime type bigint;
alter table Builds alter column notificationPendingSince type bigint;

alter table BuildSteps alter column startTime type bigint;
alter table BuildSteps alter column stopTime type bigint;

alter table BuildMetrics alter column timestamp type bigint;

alter table CachedPathInputs alter column timestamp type bigint;
alter table CachedPathInputs alter column lastSeen type bigint;
alter table CachedCVSInputs alter column timestamp type bigint;
alter table CachedCVSInputs alter column lastSeen type bigint;

alter table EvaluationErrors alter column errorTime type bigint;
alter table JobsetEvals alter column timestamp type bigint;
alter table NewsItems alter column createTime type bigint;
alter table TaskRetries alter column retry_at type bigint;
alter table RunCommandLogs alter column start_time type bigint;
alter table RunCommandLogs alter column end_time type bigint;

update SchemaVersion set version = 88;
