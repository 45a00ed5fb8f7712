//! A tiny JSON printer with cJSON's formatted layout (tabs, `"key":\tvalue`,
//! `}, {` between array items), which `conference json_list` uses.

/// A JSON value.
#[derive(Clone, Debug)]
pub enum J {
    /// String.
    S(String),
    /// Integer.
    N(i64),
    /// Boolean.
    B(bool),
    /// Object with ordered keys.
    O(Vec<(&'static str, J)>),
    /// Array.
    A(Vec<J>),
}

/// Prints `v` as `cJSON_Print` does.
pub fn print(v: &J) -> String {
    let mut out = String::new();
    value(v, 0, &mut out);
    out
}

fn tabs(n: usize, out: &mut String) {
    for _ in 0..n {
        out.push('\t');
    }
}

fn value(v: &J, depth: usize, out: &mut String) {
    match v {
        J::S(s) => match serde_json::to_string(s) {
            Ok(q) => out.push_str(&q),
            Err(_) => out.push_str("\"\""),
        },
        J::N(n) => out.push_str(&n.to_string()),
        J::B(b) => out.push_str(if *b { "true" } else { "false" }),
        J::O(fields) => {
            out.push_str("{\n");
            for (i, (k, f)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                }
                tabs(depth + 1, out);
                out.push('"');
                out.push_str(k);
                out.push_str("\":\t");
                value(f, depth + 1, out);
            }
            if !fields.is_empty() {
                out.push('\n');
            }
            tabs(depth, out);
            out.push('}');
        }
        J::A(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                value(item, depth + 1, out);
            }
            out.push(']');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_like_cjson() {
        let v = J::A(vec![J::O(vec![
            ("a", J::S("x".into())),
            ("v", J::O(vec![])),
            (
                "m",
                J::A(vec![
                    J::O(vec![("id", J::N(2))]),
                    J::O(vec![("id", J::N(1))]),
                ]),
            ),
        ])]);
        assert_eq!(
            print(&v),
            "[{\n\t\t\"a\":\t\"x\",\n\t\t\"v\":\t{\n\t\t},\n\t\t\"m\":\t[{\n\t\t\t\t\"id\":\t2\n\t\t\t}, {\n\t\t\t\t\"id\":\t1\n\t\t\t}]\n\t}]"
        );
        assert_eq!(print(&J::A(vec![])), "[]");
    }
}
