//! The demo's workload, all derived from one seed: the DAG of each pipeline
//! (fan-out and fan-in), its initial context, which attempts fail, and which
//! task kills the workers that run it.
//!
//! Every decision is a hash of the seed and the names involved, never a draw
//! from a shared generator, so a run makes the same decisions whatever order
//! the workers happen to run the tasks in.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use task_execution_dal::prelude::*;
use uuid::Uuid;

/// Attempts each task is allowed.
pub(crate) const MAX_ATTEMPTS: i32 = 3;
/// The name of every demo pipeline.
pub(crate) const PIPELINE_NAME: &str = "demo-etl";
/// The key of the initial context; every task's input context carries it.
pub(crate) const INITIAL_KEY: &str = "pipeline";
/// The key of `task_configuration` that lists a task's dependencies.
pub(crate) const DEPENDS_ON: &str = "depends_on";

/// One task of a pipeline's DAG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TaskPlan {
    /// Its name, unique in the pipeline.
    pub(crate) name: String,
    /// The tasks that must complete before it may run, in merge order.
    pub(crate) depends_on: Vec<String>,
    /// The keys its merged input context must hold: the initial context's and
    /// one per task upstream of it (each task writes its own name as key and
    /// passes its input on).
    pub(crate) input_keys: BTreeSet<String>,
    /// Kills every worker that runs it (until recovery gives up on it).
    pub(crate) kills_workers: bool,
}

/// One pipeline execution to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PipelinePlan {
    /// Its position in the workload, from 0.
    pub(crate) index: u32,
    /// Its tasks, each after all of its dependencies.
    pub(crate) tasks: Vec<TaskPlan>,
}

/// Everything the demo creates and decides, from one seed.
#[derive(Debug, Clone)]
pub(crate) struct Workload {
    /// The seed every decision derives from.
    pub(crate) seed: u64,
    /// Share of attempts that fail.
    pub(crate) failure_rate: f64,
    /// The pipelines, in creation order.
    pub(crate) pipelines: Vec<PipelinePlan>,
}

impl Workload {
    /// `pipelines` pipelines of 8 to 12 tasks each (about 10 on average). With
    /// `poison`, one task of one pipeline (chosen by the seed) kills workers.
    pub(crate) fn generate(seed: u64, pipelines: u32, failure_rate: f64, poison: bool) -> Self {
        let poisoned =
            poison.then(|| (hash(seed, &[b"poison"]) % u64::from(pipelines.max(1))) as u32);
        let pipelines = (0..pipelines)
            .map(|index| {
                let kill = (poisoned == Some(index)).then(|| hash(seed, &[b"poison-task"]));
                PipelinePlan::generate(seed, index, kill)
            })
            .collect();
        Workload {
            seed,
            failure_rate,
            pipelines,
        }
    }

    /// Every task of every pipeline.
    pub(crate) fn task_count(&self) -> usize {
        self.pipelines.iter().map(|p| p.tasks.len()).sum()
    }

    /// Whether `attempt` of `task` in pipeline `index` fails.
    pub(crate) fn attempt_fails(&self, index: u32, task: &str, attempt: i32) -> bool {
        let h = hash(
            self.seed,
            &[
                b"fail",
                &index.to_le_bytes(),
                task.as_bytes(),
                &attempt.to_le_bytes(),
            ],
        );
        unit(h) < self.failure_rate
    }

    /// The initial context of pipeline `index`.
    pub(crate) fn initial_context(&self, index: u32) -> Value {
        json!({ INITIAL_KEY: { "index": index, "seed": self.seed, "name": PIPELINE_NAME } })
    }

    /// A made-up figure that task `task` of pipeline `index` "produces".
    pub(crate) fn rows(&self, index: u32, task: &str) -> u64 {
        hash(self.seed, &[b"rows", &index.to_le_bytes(), task.as_bytes()]) % 10_000
    }
}

impl PipelinePlan {
    /// `extract`, a fan-out of 2 to 4 `transform_*` each followed by its
    /// `validate_*`, a fan-in `join`, then `load`, and `report` (which also
    /// reads `extract`). `kill`, if given, picks the transform that kills workers.
    fn generate(seed: u64, index: u32, kill: Option<u64>) -> Self {
        let width = 2 + (hash(seed, &[b"width", &index.to_le_bytes()]) % 3) as usize;
        let branches: Vec<char> = ('a'..).take(width).collect();
        let killer = kill.map(|k| branches[(k % width as u64) as usize]);
        let mut specs: Vec<(String, Vec<String>, bool)> = vec![("extract".into(), vec![], false)];
        for b in &branches {
            specs.push((
                format!("transform_{b}"),
                vec!["extract".into()],
                killer == Some(*b),
            ));
        }
        for b in &branches {
            specs.push((
                format!("validate_{b}"),
                vec![format!("transform_{b}")],
                false,
            ));
        }
        specs.push((
            "join".into(),
            branches.iter().map(|b| format!("validate_{b}")).collect(),
            false,
        ));
        specs.push(("load".into(), vec!["join".into()], false));
        specs.push((
            "report".into(),
            vec!["load".into(), "extract".into()],
            false,
        ));

        let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let tasks = specs
            .into_iter()
            .map(|(name, depends_on, kills_workers)| {
                let mut input_keys = BTreeSet::from([INITIAL_KEY.to_owned()]);
                for dep in &depends_on {
                    input_keys.insert(dep.clone());
                    input_keys.extend(keys[dep].iter().cloned());
                }
                keys.insert(name.clone(), input_keys.clone());
                TaskPlan {
                    name,
                    depends_on,
                    input_keys,
                    kills_workers,
                }
            })
            .collect();
        PipelinePlan { index, tasks }
    }

    /// The task named `name`.
    pub(crate) fn task(&self, name: &str) -> Option<&TaskPlan> {
        self.tasks.iter().find(|t| t.name == name)
    }

    /// The tasks to create for this pipeline's execution `pipeline_id`, all
    /// `NotStarted`, their dependencies in `task_configuration`.
    /// The pipeline's tasks to create; with more than one of `queues`, the
    /// n-th task goes to queue `n % queues`.
    pub(crate) fn new_tasks(&self, pipeline_id: Uuid, queues: usize) -> Vec<NewTaskExecution> {
        self.tasks
            .iter()
            .enumerate()
            .map(|(n, t)| {
                let mut task = NewTaskExecution::new(pipeline_id, t.name.clone());
                if queues > 1 {
                    task.queue = queue_name(n % queues);
                }
                task.max_attempts = MAX_ATTEMPTS;
                task.task_configuration = json!({
                    DEPENDS_ON: t.depends_on,
                    "demo": { "pipeline_index": self.index, "kills_workers": t.kills_workers },
                });
                task
            })
            .collect()
    }
}

/// The name of queue `index` of the demo, when there is more than one.
pub(crate) fn queue_name(index: usize) -> String {
    format!("queue-{index}")
}

/// The dependencies `task_configuration` lists (none when it lists none).
pub(crate) fn depends_on(task_configuration: &Value) -> Vec<String> {
    task_configuration
        .get(DEPENDS_ON)
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A 64-bit hash of `seed` and `parts` (SplitMix64 steps over the bytes):
/// stable across platforms and releases.
pub(crate) fn hash(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut h = splitmix(seed);
    for part in parts {
        for byte in *part {
            h = splitmix(h ^ u64::from(*byte));
        }
        h = splitmix(h ^ 0x100);
    }
    h
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `h` mapped onto `[0, 1)`.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_workload() {
        let a = Workload::generate(7, 20, 0.1, true);
        let b = Workload::generate(7, 20, 0.1, true);
        assert_eq!(a.pipelines, b.pipelines);
        let c = Workload::generate(8, 20, 0.1, true);
        assert_ne!(a.pipelines, c.pipelines, "another seed changes the shapes");
    }

    #[test]
    fn dags_are_ordered_and_fan_out_and_in() {
        let w = Workload::generate(1, 30, 0.0, false);
        let mut widths = BTreeSet::new();
        for p in &w.pipelines {
            let mut seen = BTreeSet::new();
            for t in &p.tasks {
                for dep in &t.depends_on {
                    assert!(seen.contains(dep), "{} depends on later {dep}", t.name);
                }
                assert!(seen.insert(t.name.clone()), "duplicate name {}", t.name);
            }
            let fan_out = p
                .tasks
                .iter()
                .filter(|t| t.depends_on == ["extract"])
                .count();
            assert!((2..=4).contains(&fan_out));
            assert_eq!(p.task("join").unwrap().depends_on.len(), fan_out);
            assert_eq!(p.tasks.len(), 2 * fan_out + 4);
            widths.insert(fan_out);
        }
        assert!(widths.len() > 1, "shapes vary between pipelines");
        let mean = w.task_count() as f64 / w.pipelines.len() as f64;
        assert!((8.0..=12.0).contains(&mean));
    }

    #[test]
    fn input_keys_cover_every_ancestor() {
        let w = Workload::generate(3, 1, 0.0, false);
        let p = &w.pipelines[0];
        assert_eq!(
            p.task("extract").unwrap().input_keys,
            BTreeSet::from([INITIAL_KEY.to_owned()])
        );
        let report = p.task("report").unwrap();
        let others: BTreeSet<String> = p
            .tasks
            .iter()
            .filter(|t| t.name != "report")
            .map(|t| t.name.clone())
            .chain([INITIAL_KEY.to_owned()])
            .collect();
        assert_eq!(report.input_keys, others);
    }

    #[test]
    fn exactly_one_poison_task_when_asked() {
        let with = Workload::generate(5, 10, 0.0, true);
        let poisoned: Vec<_> = with
            .pipelines
            .iter()
            .flat_map(|p| &p.tasks)
            .filter(|t| t.kills_workers)
            .collect();
        assert_eq!(poisoned.len(), 1);
        assert!(poisoned[0].name.starts_with("transform_"));
        let without = Workload::generate(5, 10, 0.0, false);
        assert!(
            without
                .pipelines
                .iter()
                .flat_map(|p| &p.tasks)
                .all(|t| !t.kills_workers)
        );
    }

    #[test]
    fn failure_share_follows_the_rate() {
        for rate in [0.0, 0.1, 0.5, 1.0] {
            let w = Workload::generate(11, 1, rate, false);
            let trials = 20_000;
            let fails = (0..trials)
                .filter(|i| w.attempt_fails(*i, "transform_a", 1))
                .count();
            let share = fails as f64 / f64::from(trials);
            assert!((share - rate).abs() < 0.02, "rate {rate}: share {share}");
        }
    }

    #[test]
    fn dependencies_round_trip_through_configuration() {
        let w = Workload::generate(2, 1, 0.0, false);
        let p = &w.pipelines[0];
        let id = Uuid::nil();
        for (new, plan) in p.new_tasks(id, 1).iter().zip(&p.tasks) {
            assert_eq!(new.task_name, plan.name);
            assert_eq!(new.max_attempts, MAX_ATTEMPTS);
            assert_eq!(depends_on(&new.task_configuration), plan.depends_on);
            new.validate().unwrap();
        }
        assert!(depends_on(&json!({})).is_empty());
    }
}
