-- hydra-bottleneck: test schema for a Hydra database at schema version 80,
-- the C++ queue runner era.
--
-- Mirrors the tables this tool reads as they stand in NixOS/hydra at schema
-- version 80 (subprojects/hydra/sql/schemas/hydra-80.sql): same table and
-- column names, column order, types, defaults, NULL-ability, keys, checks and
-- the indexes the tool's queries lean on. Written for this tool's tests and as
-- the target schema of `sample --into`; it is not Hydra's own DDL.
--
-- Left out on purpose: Users and every foreign key to it (Projects.owner is
-- plain text here), all other Hydra tables (EvaluationErrors, BuildProducts,
-- BuildInputs, ...), triggers, functions, NOTIFY hooks, the FailedPaths
-- insert rule, the pg_trgm index on builds.drvpath, and the
-- NrBuilds('finished', 0) seed row (nothing here keeps it up to date).
--
-- How it differs from version 87, for a reader of these tables:
--   * BuildSteps.drvPath may be null (NOT NULL came with version 86);
--   * BuildSteps has no resolvedDrvPath and no status-13 check (version 87);
--   * BuildOutputs.path and BuildStepOutputs.path are NOT NULL (relaxed in 84);
--   * Jobsets lacks enable_dynamic_run_command (added in 82), and so does
--     Projects (added between 83 and 87).
-- Builds already uses jobset_id only: version 80 is the first without the old
-- Builds.project / Builds.jobset text columns. JobsetEvals has used jobset_id
-- since version 72.
--
-- Identifiers are unquoted, so PostgreSQL folds them to lower case.
-- Times are unix seconds in integer columns; BuildSteps.overhead is in ms.

create table SchemaVersion (
    version integer not null
);
insert into SchemaVersion (version) values (80);

create table Projects (
    name        text primary key not null,
    displayName text not null,
    description text,
    enabled     integer not null default 1,
    hidden      integer not null default 0,
    owner       text not null,             -- a user name; no Users table here
    homepage    text,
    declfile    text,
    decltype    text,
    declvalue   text
);

create table Jobsets (
    name             text not null,
    id               serial not null,
    project          text not null,
    description      text,
    nixExprInput     text,
    nixExprPath      text,
    errorMsg         text,
    errorTime        integer,
    lastCheckedTime  integer,
    triggerTime      integer,
    enabled          integer not null default 1,   -- 0 off, 1 on, 2 one-shot, 3 one-at-a-time
    enableEmail      integer not null default 1,
    hidden           integer not null default 0,
    emailOverride    text not null,
    keepnr           integer not null default 3,
    checkInterval    integer not null default 300,
    schedulingShares integer not null default 100,
    fetchErrorMsg    text,
    forceEval        boolean,
    startTime        integer,
    type             integer not null default 0,   -- 0 legacy, 1 flake
    flake            text,
    constraint jobsets_schedulingshares_nonzero_check check (schedulingShares > 0),
    constraint jobsets_type_known_check check (type = 0 or type = 1),
    -- legacy jobsets name an input and a path, flake jobsets a flake, never both
    constraint jobsets_legacy_paths_check check
        ((type = 0) = (nixExprInput is not null and nixExprPath is not null and flake is null)),
    constraint jobsets_flake_paths_check check
        ((type = 1) = (nixExprInput is null and nixExprPath is null and flake is not null)),
    primary key (project, name),
    foreign key (project) references Projects(name) on delete cascade on update cascade,
    constraint Jobsets_id_unique unique (id)
);

create table Builds (
    id             serial primary key not null,
    finished       integer not null,           -- 0 queued, 1 done
    timestamp      integer not null,           -- when queued
    jobset_id      integer not null,
    job            text not null,
    nixName        text,
    description    text,
    drvPath        text not null,
    system         text not null,
    license        text,
    homepage       text,
    maintainers    text,
    maxsilent      integer default 3600,
    timeout        integer default 36000,
    isChannel      integer not null default 0,
    isCurrent      integer default 0,
    priority       integer not null default 0,
    globalPriority integer not null default 0,
    startTime      integer,
    stopTime       integer,
    isCachedBuild  integer,
    buildStatus    integer,
    size           bigint,
    closureSize    bigint,
    releaseName    text,
    keep           integer not null default 0,
    notificationPendingSince integer,
    -- a finished build carries nonzero start and stop times
    check (finished = 0 or (stoptime is not null and stoptime != 0)),
    check (finished = 0 or (starttime is not null and starttime != 0)),
    foreign key (jobset_id) references Jobsets(id) on delete cascade
);

create table BuildOutputs (
    build integer not null,
    name  text not null,
    path  text not null,
    primary key (build, name),
    foreign key (build) references Builds(id) on delete cascade
);

create table BuildSteps (
    build          integer not null,
    stepnr         integer not null,
    type           integer not null,           -- 0 build, 1 substitution
    drvPath        text,                       -- null in some very old substitution steps
    busy           integer not null,
    status         integer,                    -- null while running
    errorMsg       text,
    startTime      integer,
    stopTime       integer,
    machine        text not null default '',
    system         text,
    propagatedFrom integer,
    overhead       integer,                    -- milliseconds
    timesBuilt     integer,
    isNonDeterministic boolean,
    primary key (build, stepnr),
    foreign key (build) references Builds(id) on delete cascade,
    foreign key (propagatedFrom) references Builds(id) on delete cascade
);

create table BuildStepOutputs (
    build  integer not null,
    stepnr integer not null,
    name   text not null,
    path   text not null,
    primary key (build, stepnr, name),
    foreign key (build) references Builds(id) on delete cascade,
    foreign key (build, stepnr) references BuildSteps(build, stepnr) on delete cascade
);

create table BuildMetrics (
    build     integer not null,
    name      text not null,
    unit      text,
    value     double precision not null,
    project   text not null,                   -- copied from the build's jobset
    jobset    text not null,
    job       text not null,
    timestamp integer not null,
    primary key (build, name),
    foreign key (build) references Builds(id) on delete cascade,
    foreign key (project) references Projects(name) on update cascade,
    foreign key (project, jobset) references Jobsets(project, name) on update cascade
);

create table JobsetEvals (
    id                 serial primary key not null,
    jobset_id          integer not null,
    evaluationerror_id integer,                -- EvaluationErrors(id) upstream; no FK here
    timestamp          integer not null,
    checkoutTime       integer not null,       -- seconds
    evalTime           integer not null,       -- seconds
    hasNewBuilds       integer not null,
    hash               text not null,
    nrBuilds           integer,
    nrSucceeded        integer,
    flake              text,
    nixExprInput       text,
    nixExprPath        text,
    foreign key (jobset_id) references Jobsets(id) on delete cascade
);

create table JobsetEvalMembers (
    eval  integer not null references JobsetEvals(id) on delete cascade,
    build integer not null references Builds(id) on delete cascade,
    isNew integer not null,
    primary key (eval, build)
);

create table FailedPaths (
    path text primary key not null
);

create table SystemStatus (
    what   text primary key not null,
    status json not null
);

create table NrBuilds (
    what  text primary key not null,
    count integer not null
);

create index IndexBuildsOnFinished on Builds(finished) where finished = 0;
create index IndexBuildsOnIsCurrent on Builds(isCurrent) where isCurrent = 1;
create index IndexBuildsJobsetIdCurrentUnfinished on Builds(jobset_id) where isCurrent = 1 and finished = 0;
create index IndexBuildsJobsetIdCurrentFinishedStatus on Builds(jobset_id, buildstatus) where isCurrent = 1 and finished = 1;
create index IndexBuildsJobsetIdCurrent on Builds(jobset_id) where isCurrent = 1;
create index IndexBuildsOnTimestamp on Builds(timestamp);
create index IndexBuildsOnFinishedStopTime on Builds(finished, stoptime desc);
create index IndexBuildsOnJobsetIdFinishedId on Builds(jobset_id, job, finished, id desc);
create index IndexFinishedSuccessfulBuilds on Builds(jobset_id, job, finished, buildstatus, id desc) where buildstatus = 0 and finished = 1;
create index IndexBuildsOnDrvPath on Builds(drvPath);
create index IndexBuildsOnKeep on Builds(keep) where keep = 1;
create index IndexBuildsOnNotificationPendingSince on Builds(notificationPendingSince) where notificationPendingSince is not null;
create index IndexBuildOutputsPath on BuildOutputs using hash(path);
create index IndexBuildStepsOnBusy on BuildSteps(busy) where busy != 0;
create index IndexBuildStepsOnDrvPath on BuildSteps(drvpath);
create index IndexBuildStepsOnPropagatedFrom on BuildSteps(propagatedFrom) where propagatedFrom is not null;
create index IndexBuildStepsOnStopTime on BuildSteps(stopTime desc) where startTime is not null and stopTime is not null;
create index IndexBuildStepOutputsOnPath on BuildStepOutputs(path);
create index IndexBuildMetricsOnJobTimestamp on BuildMetrics(project, jobset, job, timestamp desc);
create index IndexJobsetEvalMembersOnBuild on JobsetEvalMembers(build);
create index IndexJobsetEvalMembersOnEval on JobsetEvalMembers(eval);
create index IndexJobsetEvalsOnJobsetId on JobsetEvals(jobset_id, id desc) where hasNewBuilds = 1;
create index IndexJobsetIdEvals on JobsetEvals(jobset_id) where hasNewBuilds = 1;
create index IndexProjectsOnEnabled on Projects(enabled);
