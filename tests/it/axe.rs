//! axe-core, the accessibility checker, run inside a page the browser tests drive. The npm
//! package is installed into tests/axe/node_modules (`npm ci --prefix tests/axe`, which
//! scripts/install-deps.sh runs) and loaded into the page over the DevTools protocol, so the
//! pages' strict CSP stays as it is.

use crate::cdp::Browser;
use std::sync::OnceLock;

fn source() -> &'static str {
    static SOURCE: OnceLock<String> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/axe/node_modules/axe-core/axe.min.js");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {} ({e}): run scripts/install-deps.sh (npm ci --prefix tests/axe)", path.display()))
    })
}

/// The serious and critical violations axe finds in the page now, one line each: the page's
/// name, the rule, what it asks, and the elements (at most five) with what is wrong.
pub fn violations(b: &mut Browser, page: &str) -> Vec<String> {
    if b.eval("typeof window.axe") != "object" {
        b.eval(&format!("{};\n'loaded'", source()));
    }
    let found = b.eval(
        "axe.run(document, { resultTypes: ['violations'] }).then(r => r.violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => `${v.id} (${v.impact}): ${v.help}\\n      ` + v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' → ' + (n.failureSummary || '').replace(/\\n\\s*/g, ' ')).join('\\n      ')))",
    );
    found.as_array().expect("axe answers a list").iter().map(|v| format!("{page}: {}", v.as_str().unwrap_or_default())).collect()
}

/// Fails with every serious or critical violation found across the pages checked.
pub fn assert_none(found: &[String]) {
    assert!(found.is_empty(), "axe-core found {} serious or critical violation(s):\n{}", found.len(), found.join("\n"));
}
