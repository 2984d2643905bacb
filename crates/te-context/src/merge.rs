//! `merge_context_values`: how the contexts of a task's dependencies combine.

use std::collections::HashSet;

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
pub fn merge_context_values(existing: &Value, new: &Value) -> Value {
    match (existing, new) {
        (Value::Object(old), Value::Object(newer)) => {
            let mut merged = old.clone();
            for (key, value) in newer {
                let value = match merged.get(key) {
                    Some(previous) => merge_context_values(previous, value),
                    None => value.clone(),
                };
                merged.insert(key.clone(), value);
            }
            Value::Object(merged)
        }
        (Value::Array(old), Value::Array(newer)) => {
            let mut present: HashSet<&Value> = old.iter().collect();
            let mut merged = old.clone();
            for item in newer {
                if present.insert(item) {
                    merged.push(item.clone());
                }
            }
            Value::Array(merged)
        }
        (_, newer) => newer.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

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
}
