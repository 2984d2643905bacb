//! The compound forms for engines, on the backend `TE_TEST_BACKEND` selects:
//! `complete_with_context` (the completion and its output in one
//! transaction), `mark_ready_many` (promoting dependents in one call) and
//! `complete_and_promote` (both in one transaction).

use serde_json::json;
use uuid::Uuid;

use task_execution_dal::prelude::*;

use crate::common::{
    assert_invalid, assert_not_found, count_events, db_with_pipeline, events, ids,
    ready_and_claimed, row_counts, task_in,
};

use TaskStatus::{Completed, NotStarted, Ready, Running};

#[tokio::test]
async fn complete_with_context_completes_and_stores_the_output_together() {
    let (db, p) = db_with_pipeline().await;
    let runner = Uuid::new_v4();
    let task = ready_and_claimed(&db, p, "extract", runner).await;
    let output = json!({"rows": 42, "files": ["a.csv"]});

    assert!(
        db.complete_with_context(task, Some(runner), &output)
            .await
            .unwrap()
    );
    assert_completed_with(&db, task, &output).await;
    // One metadata row, linking the context the event names.
    let (metadata, context) = only_metadata(&db, p, "extract").await;
    assert_eq!(
        (metadata.task_execution_id, metadata.pipeline_execution_id),
        (task, p)
    );
    assert_eq!(context, Some(output));
    let saved = events(&db, Some(task), None).await.pop().unwrap();
    assert_eq!(
        saved.event_data,
        Some(json!({ "context_id": metadata.context_id.unwrap() }))
    );
}

/// Asserts that claimed task `task` is `Completed`, unclaimed, with `output`
/// as its context, and that its completion logged `TaskCompleted` then
/// `ContextSaved`.
async fn assert_completed_with(db: &TaskExecutionDal, task: Uuid, output: &serde_json::Value) {
    let row = db.get_by_id(task).await.unwrap();
    assert_eq!((row.status, row.claimed_by), (Completed, None));
    assert_eq!(
        db.load_task_context(task).await.unwrap().as_ref(),
        Some(output)
    );
    assert_eq!(
        event_kinds(db, task).await,
        vec![
            EventType::TaskCreated,
            EventType::TaskClaimed,
            EventType::TaskCompleted,
            EventType::ContextSaved
        ]
    );
}

/// The types of task `task`'s audit events, in order.
async fn event_kinds(db: &TaskExecutionDal, task: Uuid) -> Vec<EventType> {
    events(db, Some(task), None)
        .await
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

/// The one metadata row of task `name` of `pipeline_id`, with its context.
async fn only_metadata(
    db: &TaskExecutionDal,
    pipeline_id: Uuid,
    name: &str,
) -> (TaskExecutionMetadata, Option<serde_json::Value>) {
    let mut rows = db
        .get_dependency_metadata_with_contexts(pipeline_id, &[name.to_owned()])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "one metadata row for {name}");
    rows.pop().unwrap()
}

#[tokio::test]
async fn complete_with_context_replaces_an_output_saved_before_in_place() {
    let (db, p) = db_with_pipeline().await;
    let runner = Uuid::new_v4();
    let task = ready_and_claimed(&db, p, "extract", runner).await;
    let first = db
        .save_task_context(task, &json!({"partial": true}))
        .await
        .unwrap();
    let before = row_counts(&db).await;

    let output = json!({"rows": 7});
    assert!(
        db.complete_with_context(task, Some(runner), &output)
            .await
            .unwrap()
    );
    assert_eq!(db.get_by_id(task).await.unwrap().status, Completed);
    let (metadata, context) = only_metadata(&db, p, "extract").await;
    assert_eq!(metadata.context_id, Some(first), "the same context row");
    assert_eq!(context, Some(output));
    let after = row_counts(&db).await;
    assert_eq!(after.contexts, before.contexts, "no second context row");
    assert_eq!(after.metadata, before.metadata, "no second metadata row");
    assert_eq!(
        event_kinds(&db, task).await,
        vec![
            EventType::TaskCreated,
            EventType::TaskClaimed,
            EventType::ContextSaved,
            EventType::TaskCompleted,
            EventType::ContextSaved
        ]
    );
}

#[tokio::test]
async fn mark_ready_many_promotes_only_waiting_tasks_with_an_event_each() {
    let (db, p) = db_with_pipeline().await;
    let a = task_in(&db, p, "a", NotStarted).await;
    let b = task_in(&db, p, "b", NotStarted).await;
    let c = task_in(&db, p, "c", Ready).await;
    let running = task_in(&db, p, "running", Running).await;
    let done = task_in(&db, p, "done", Running).await;
    assert!(db.mark_completed(done.id, None).await.unwrap());
    let events_before = count_events(&db, None).await;
    let running_row = db.get_by_id(running.id).await.unwrap();

    let moved = db
        .mark_ready_many(vec![
            a.id,
            b.id,
            c.id,
            a.id,
            running.id,
            done.id,
            Uuid::new_v4(),
        ])
        .await
        .unwrap();
    assert_eq!(moved, 3);
    for task in [&a, &b, &c] {
        assert_eq!(db.get_by_id(task.id).await.unwrap().status, Ready);
        let ready_events = events(&db, Some(task.id), Some(EventType::TaskReady)).await;
        assert_eq!(ready_events.len(), 1, "{}", task.task_name);
    }
    assert_eq!(db.get_by_id(running.id).await.unwrap(), running_row);
    assert_eq!(db.get_by_id(done.id).await.unwrap().status, Completed);
    assert_eq!(count_events(&db, None).await, events_before + 3);
    assert_eq!(db.mark_ready_many(Vec::new()).await.unwrap(), 0);

    // The promoted tasks are claimable, in creation order.
    let claimed = ids(&db.claim_ready_task(10).await.unwrap());
    assert_eq!(claimed, vec![a.id, b.id, c.id]);
}

#[tokio::test]
async fn complete_and_promote_completes_stores_and_promotes_together() {
    let (db, p) = db_with_pipeline().await;
    let runner = Uuid::new_v4();
    let task = ready_and_claimed(&db, p, "extract", runner).await;
    let a = task_in(&db, p, "a", NotStarted).await;
    let b = task_in(&db, p, "b", NotStarted).await;
    let running = task_in(&db, p, "running", Running).await;
    let later = task_in(&db, p, "later", NotStarted).await;
    let running_row = db.get_by_id(running.id).await.unwrap();
    let output = json!({"rows": 7});
    let events_before = count_events(&db, None).await;

    let promoted = db
        .complete_and_promote(
            task,
            Some(runner),
            &output,
            vec![a.id, b.id, a.id, running.id, task, Uuid::new_v4()],
        )
        .await
        .unwrap();
    assert_eq!(promoted, Some(2));
    assert_completed_with(&db, task, &output).await;
    for dependent in [&a, &b] {
        assert_eq!(db.get_by_id(dependent.id).await.unwrap().status, Ready);
        assert_eq!(
            events(&db, Some(dependent.id), Some(EventType::TaskReady))
                .await
                .len(),
            1
        );
    }
    assert_eq!(db.get_by_id(running.id).await.unwrap(), running_row);
    assert_eq!(db.get_by_id(later.id).await.unwrap().status, NotStarted);
    // Completed, ContextSaved, and one TaskReady per promoted dependent.
    assert_eq!(count_events(&db, None).await, events_before + 4);
    assert_eq!(
        ids(&db.claim_ready_task(10).await.unwrap()),
        vec![a.id, b.id]
    );

    // With no dependents it is complete_with_context.
    let second = ready_and_claimed(&db, p, "second", runner).await;
    assert_eq!(
        db.complete_and_promote(second, None, &json!({}), Vec::new())
            .await
            .unwrap(),
        Some(0)
    );
    assert_eq!(db.get_by_id(second).await.unwrap().status, Completed);
}

/// A refused completion writes nothing, output and promotion included:
/// `complete_with_context`, or with `promote` `complete_and_promote` of a
/// waiting dependent (its `None` read as `false`).
async fn refused_completions_write_nothing(promote: bool) {
    let (db, p) = db_with_pipeline().await;
    let (holder, stale) = (Uuid::new_v4(), Uuid::new_v4());
    let held = ready_and_claimed(&db, p, "held", holder).await;
    let waiting = task_in(&db, p, "waiting", NotStarted).await;
    let dependent = task_in(&db, p, "dependent", NotStarted).await;
    let output = json!({"late": true});
    let before = row_counts(&db).await;
    let held_row = db.get_by_id(held).await.unwrap();
    let complete = |task: Uuid, runner: Option<Uuid>, output: serde_json::Value| {
        let dal = db.dal().clone();
        async move {
            if promote {
                dal.complete_and_promote(task, runner, &output, vec![dependent.id])
                    .await
                    .map(|promoted| promoted.is_some())
            } else {
                dal.complete_with_context(task, runner, &output).await
            }
        }
    };

    // A runner that does not hold the claim: false, not even the context.
    assert!(!complete(held, Some(stale), output.clone()).await.unwrap());
    // A task that is not running, an unknown task, a context that is not an object.
    let result = complete(waiting.id, None, output.clone()).await;
    assert!(
        matches!(
            result,
            Err(DalError::IllegalTransition {
                from: NotStarted,
                ..
            })
        ),
        "{result:?}"
    );
    assert_not_found(
        complete(Uuid::new_v4(), None, output.clone()).await,
        "task execution",
    );
    assert_invalid(complete(held, Some(holder), json!([1, 2])).await, "context");
    assert_eq!(row_counts(&db).await, before);
    assert_eq!(db.get_by_id(held).await.unwrap(), held_row);
    for task in [&waiting, &dependent] {
        assert_eq!(db.get_by_id(task.id).await.unwrap().status, NotStarted);
    }
    assert_eq!(db.load_task_context(held).await.unwrap(), None);
}

#[tokio::test]
async fn complete_with_context_writes_nothing_when_refused() {
    refused_completions_write_nothing(false).await;
}

#[tokio::test]
async fn complete_and_promote_writes_nothing_when_refused() {
    refused_completions_write_nothing(true).await;
}
