//! Event-type globs for destination filters: `*` matches any run of
//! characters (including dots), everything else matches itself.

pub fn matches(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs() {
        assert!(matches("order.*", "order.created"));
        assert!(matches("*", "anything"));
        assert!(matches("order.created", "order.created"));
        assert!(matches("*.created", "order.created"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("order.*", "orders.created"));
        assert!(!matches("order.created", "order.created.v2"));
        assert!(!matches("a*b", "acb.c"));
    }
}
