-- hydra-bottleneck: schema version 89 → 90 (NixOS/hydra migrations/upgrade-90.sql @ 450d8710):
-- once `hydra-backfill-store-dirs` has converted every row, storeDir becomes mandatory where
-- the path is, and each child row's store dir is tied to its parent's. Upstream first refuses
-- to run while a row still waits for conversion; this file is applied to empty tables, so it
-- leaves that check out. Written for this tool; applied on top of upgrade-89.sql.
-- docs/hydra.md §1.

alter table Builds alter column storeDir set not null;
-- Referenced by the children's composite foreign keys below.
alter table Builds add unique (storeDir, id);

alter table BuildSteps alter column storeDir set not null;
alter table BuildSteps add unique (storeDir, build, stepnr);
-- A step is in its build's store: the composite key replaces the plain one.
alter table BuildSteps drop constraint buildsteps_build_fkey;
alter table BuildSteps add foreign key (storeDir, build)
    references Builds(storeDir, id) on delete cascade;

-- Where the path may be null, so may the store dir, and exactly together. A null store dir
-- satisfies a composite key trivially, so the plain key to the build stays.
alter table BuildOutputs add check ((path is null) = (storeDir is null));
alter table BuildOutputs add foreign key (storeDir, build)
    references Builds(storeDir, id) on delete cascade;

alter table BuildStepOutputs add check ((path is null) = (storeDir is null));
alter table BuildStepOutputs add foreign key (storeDir, build, stepnr)
    references BuildSteps(storeDir, build, stepnr) on delete cascade;

alter table BuildProducts add check ((path is null) = (storeDir is null));
alter table BuildProducts add check ((path is null) = (subPath is null));
alter table BuildProducts add foreign key (storeDir, build)
    references Builds(storeDir, id) on delete cascade;

alter table BuildInputs add check ((path is null) = (storeDir is null));
alter table JobsetEvalInputs add check ((path is null) = (storeDir is null));

-- The key stays the basename alone; the pair is unique as well.
alter table FailedPaths alter column storeDir set not null;
alter table FailedPaths add unique (storeDir, path);

alter table CachedPathInputs alter column storeDir set not null;
alter table CachedSubversionInputs alter column storeDir set not null;
alter table CachedBazaarInputs alter column storeDir set not null;
alter table CachedGitInputs alter column storeDir set not null;
alter table CachedDarcsInputs alter column storeDir set not null;
alter table CachedHgInputs alter column storeDir set not null;
alter table CachedCVSInputs alter column storeDir set not null;

update SchemaVersion set version = 90;
