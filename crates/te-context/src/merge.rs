//! `merge_context_values`: how the contexts of a task's dependencies combine.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::Value;

/// Merges `new` into `existing` and returns the result; neither input changes.
///
/// - two objects merge key by key, recursively: keys of either are kept, and a
///   key present in both holds the merge of its two values;
/// - two arrays concatenate without duplicates: the items of `existing` in
///   their order, then each item of `new` not already present, in its order;
/// - anything else (a scalar, `null`, or two values of different kinds):
///   `new` wins.
///
/// Merging dependency contexts in order with this function means that a
/// later dependency's scalar overrides an earlier one's.
///
/// Time and memory are linear in the size of the two inputs, and the work is
/// done with explicit stacks: any depth of nesting is merged without
/// exhausting the thread's stack. (Dropping a deeply nested `Value` the
/// ordinary way recurses once per level, so a caller holding values
/// thousands of levels deep should take them apart level by level.)
pub fn merge_context_values(existing: &Value, new: &Value) -> Value {
    let mut tasks = vec![Task::Merge(existing, new)];
    // Finished values, in the order their parents expect them.
    let mut done: Vec<Value> = Vec::new();
    while let Some(task) = tasks.pop() {
        match task {
            Task::Merge(Value::Object(old), Value::Object(newer)) => {
                let keys: Vec<&String> = old
                    .keys()
                    .chain(newer.keys().filter(|key| !old.contains_key(*key)))
                    .collect();
                let children: Vec<Task> = keys
                    .iter()
                    .map(|key| match (old.get(*key), newer.get(*key)) {
                        (Some(previous), Some(value)) => Task::Merge(previous, value),
                        (Some(value), None) | (None, Some(value)) => Task::Copy(value),
                        (None, None) => unreachable!("every key comes from one of the maps"),
                    })
                    .collect();
                tasks.push(Task::Object(keys));
                tasks.extend(children.into_iter().rev());
            }
            Task::Merge(Value::Array(old), Value::Array(newer)) => {
                let mut present = Present::default();
                let mut kept: Vec<&Value> = Vec::with_capacity(old.len() + newer.len());
                for item in old {
                    present.insert(item);
                    kept.push(item);
                }
                kept.extend(newer.iter().filter(|item| present.insert(item)));
                tasks.push(Task::Array(kept.len()));
                tasks.extend(kept.into_iter().rev().map(Task::Copy));
            }
            Task::Merge(_, newer) | Task::Copy(newer) => match newer {
                Value::Object(map) => {
                    tasks.push(Task::Object(map.keys().collect()));
                    tasks.extend(map.values().rev().map(Task::Copy));
                }
                Value::Array(items) => {
                    tasks.push(Task::Array(items.len()));
                    tasks.extend(items.iter().rev().map(Task::Copy));
                }
                scalar => done.push(scalar.clone()),
            },
            Task::Object(keys) => {
                let values = done.split_off(done.len() - keys.len());
                done.push(Value::Object(
                    keys.into_iter().cloned().zip(values).collect(),
                ));
            }
            Task::Array(len) => {
                let items = done.split_off(done.len() - len);
                done.push(Value::Array(items));
            }
        }
    }
    done.pop().expect("the merge produces one value")
}

/// One step of [`merge_context_values`].
enum Task<'a> {
    /// Merge `new` into `existing`; leaves one value on the stack of results.
    Merge(&'a Value, &'a Value),
    /// Copy a value; leaves one value.
    Copy(&'a Value),
    /// Assemble an object from the last `keys.len()` results, in key order.
    Object(Vec<&'a String>),
    /// Assemble an array from the last `len` results, in order.
    Array(usize),
}

/// The array items seen so far, compared by value without recursion.
#[derive(Default)]
struct Present<'a> {
    by_fingerprint: HashMap<u64, Vec<&'a Value>>,
}

impl<'a> Present<'a> {
    /// Adds `item`; false when an equal item was already present.
    fn insert(&mut self, item: &'a Value) -> bool {
        let bucket = self.by_fingerprint.entry(fingerprint(item)).or_default();
        if bucket.iter().any(|seen| equal(seen, item)) {
            return false;
        }
        bucket.push(item);
        true
    }
}

/// A hash of `value` consistent with `==` (object entries combine in any
/// order), computed with an explicit stack.
fn fingerprint(value: &Value) -> u64 {
    enum Step<'a> {
        Enter(&'a Value),
        Array(usize),
        Object(Vec<&'a String>),
    }
    let mut steps = vec![Step::Enter(value)];
    let mut hashes: Vec<u64> = Vec::new();
    while let Some(step) = steps.pop() {
        let mut hasher = DefaultHasher::new();
        match step {
            Step::Enter(Value::Array(items)) => {
                steps.push(Step::Array(items.len()));
                steps.extend(items.iter().rev().map(Step::Enter));
                continue;
            }
            Step::Enter(Value::Object(map)) => {
                steps.push(Step::Object(map.keys().collect()));
                steps.extend(map.values().rev().map(Step::Enter));
                continue;
            }
            // A scalar's hash does not recurse.
            Step::Enter(scalar) => scalar.hash(&mut hasher),
            Step::Array(len) => {
                (b'[', len).hash(&mut hasher);
                hashes.split_off(hashes.len() - len).hash(&mut hasher);
            }
            Step::Object(keys) => {
                let values = hashes.split_off(hashes.len() - keys.len());
                let entries = keys.iter().zip(values).fold(0u64, |sum, entry| {
                    let mut entry_hasher = DefaultHasher::new();
                    entry.hash(&mut entry_hasher);
                    sum.wrapping_add(entry_hasher.finish())
                });
                (b'{', keys.len(), entries).hash(&mut hasher);
            }
        }
        hashes.push(hasher.finish());
    }
    hashes.pop().unwrap_or_default()
}

/// `a == b`, compared with an explicit stack.
fn equal(a: &Value, b: &Value) -> bool {
    let mut pairs = vec![(a, b)];
    while let Some(pair) = pairs.pop() {
        match pair {
            (Value::Array(x), Value::Array(y)) => {
                if x.len() != y.len() {
                    return false;
                }
                pairs.extend(x.iter().zip(y));
            }
            (Value::Object(x), Value::Object(y)) => {
                if x.len() != y.len() {
                    return false;
                }
                for (key, value) in x {
                    match y.get(key) {
                        Some(other) => pairs.push((value, other)),
                        None => return false,
                    }
                }
            }
            (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => {
                return false;
            }
            // Two scalars: `==` does not recurse.
            (x, y) => {
                if x != y {
                    return false;
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::merge_context_values as merge;

    #[test]
    fn objects_merge_recursively() {
        let existing = json!({"a": 1, "nested": {"x": 1, "deep": {"p": true}}});
        let new = json!({"b": 2, "nested": {"y": 2, "deep": {"q": false}}});
        assert_eq!(
            merge(&existing, &new),
            json!({"a": 1, "b": 2, "nested": {"x": 1, "y": 2, "deep": {"p": true, "q": false}}})
        );
    }

    #[test]
    fn arrays_concatenate_without_duplicates_keeping_order() {
        assert_eq!(
            merge(&json!([3, 1, 2]), &json!([2, 4, 1, 5])),
            json!([3, 1, 2, 4, 5])
        );
        // Items repeated within the newer array are added once.
        assert_eq!(
            merge(&json!([]), &json!(["a", "a", "b"])),
            json!(["a", "b"])
        );
        // Composite items compare by value.
        assert_eq!(
            merge(&json!([{"id": 1}]), &json!([{"id": 1}, {"id": 2}])),
            json!([{"id": 1}, {"id": 2}])
        );
        // 1 and 1.0 are different JSON numbers, "1" a string.
        assert_eq!(
            merge(&json!([1]), &json!([1.0, "1", 1])),
            json!([1, 1.0, "1"])
        );
    }

    #[test]
    fn arrays_inside_objects_merge_too() {
        assert_eq!(
            merge(
                &json!({"tags": ["x"], "n": 1}),
                &json!({"tags": ["y", "x"]})
            ),
            json!({"tags": ["x", "y"], "n": 1})
        );
    }

    #[test]
    fn otherwise_the_newer_value_wins() {
        assert_eq!(
            merge(&json!({"k": 1}), &json!({"k": "one"})),
            json!({"k": "one"})
        );
        assert_eq!(
            merge(&json!({"k": [1]}), &json!({"k": {"x": 1}})),
            json!({"k": {"x": 1}})
        );
        assert_eq!(
            merge(&json!({"k": {"x": 1}}), &json!({"k": 5})),
            json!({"k": 5})
        );
        assert_eq!(
            merge(&json!({"k": 1}), &json!({"k": null})),
            json!({"k": null})
        );
        assert_eq!(merge(&json!([1, 2]), &json!("s")), json!("s"));
        assert_eq!(merge(&json!(1), &json!(2)), json!(2));
        assert_eq!(merge(&json!(true), &json!([1])), json!([1]));
    }

    #[test]
    fn order_decides_which_scalar_wins() {
        let first = json!({"shared": "first", "a": [1]});
        let second = json!({"shared": "second", "a": [2]});
        assert_eq!(
            merge(&first, &second),
            json!({"shared": "second", "a": [1, 2]})
        );
        assert_eq!(
            merge(&second, &first),
            json!({"shared": "first", "a": [2, 1]})
        );
    }

    #[test]
    fn inputs_are_left_unchanged_and_empty_objects_are_neutral() {
        let existing = json!({"a": {"b": [1]}});
        let new = json!({"a": {"b": [2]}});
        let _ = merge(&existing, &new);
        assert_eq!(existing, json!({"a": {"b": [1]}}));
        assert_eq!(new, json!({"a": {"b": [2]}}));
        assert_eq!(merge(&json!({}), &existing), existing);
        assert_eq!(merge(&existing, &json!({})), existing);
    }

    /// `{"k": {"k": … {"leaf": tag} …}, "tag": tag}` nested `depth` levels,
    /// built without recursion.
    fn deep(depth: usize, tag: &str) -> Value {
        let mut value = json!({ "leaf": tag });
        for _ in 0..depth {
            let mut map = serde_json::Map::new();
            map.insert("k".to_owned(), value);
            map.insert(tag.to_owned(), Value::Array(vec![Value::from(tag)]));
            value = Value::Object(map);
        }
        value
    }

    #[test]
    fn any_depth_merges_without_exhausting_the_stack() {
        // 100,000 levels on a test thread's 2 MB stack: a recursive merge,
        // clone, hash or comparison would overflow it.
        const DEPTH: usize = 100_000;
        let (a, b) = (deep(DEPTH, "a"), deep(DEPTH, "b"));
        let merged = merge(&a, &b);
        // Every level holds both tags and the next level; the leaf is b's.
        let mut level = &merged;
        for _ in 0..DEPTH {
            assert_eq!(level["a"], json!(["a"]));
            assert_eq!(level["b"], json!(["b"]));
            level = &level["k"];
        }
        assert_eq!(level, &json!({"leaf": "b"}));
        // Deep items of arrays are compared by value without recursion too.
        let (x, y) = (json!([]), json!([]));
        let with_deep = |value: &Value, item: Value| {
            let mut value = value.clone();
            value.as_array_mut().unwrap().push(item);
            value
        };
        let x = with_deep(&x, deep(DEPTH, "a"));
        let y = with_deep(&y, deep(DEPTH, "a"));
        let items = merge(&x, &y);
        assert_eq!(items.as_array().map(Vec::len), Some(1));
        // Dropped level by level: dropping them whole recurses per level.
        te_core::toolkit::validate::discard([a, b, merged, x, y, items]);
    }

    #[test]
    fn equal_objects_in_arrays_are_found_whatever_their_contents() {
        let records: Vec<Value> = (0..1000).map(|id| json!({"id": id, "n": [id]})).collect();
        let old = Value::Array(records[..600].to_vec());
        let new = Value::Array(records[400..].to_vec());
        assert_eq!(merge(&old, &new), Value::Array(records.clone()));
    }
}
