//! Full-text search over finished sessions' messages and transcripts: SQLite FTS5 or PostgreSQL
//! full-text (a GIN index over `to_tsvector('simple', body)`). Neither is portable SQL, so the
//! search table is made here at connect, per backend, instead of in the shared migrations.
//! Both use the language-neutral tokenizer (no stemming): a contact center hears many languages.
//! Text and queries are folded the same way first (lower case, accents dropped), so "donde"
//! finds "Dónde" on either database.

use sqlx::{Any, AnyPool, Transaction};

use super::{Backend, StoreError};

pub(super) async fn ensure(pool: &AnyPool, backend: Backend) -> Result<(), StoreError> {
    let statements: &[&str] = match backend {
        Backend::Sqlite => &["CREATE VIRTUAL TABLE IF NOT EXISTS session_search USING fts5(\
             session_id UNINDEXED, tenant UNINDEXED, body, tokenize = 'unicode61 remove_diacritics 2')"],
        Backend::Postgres => &[
            "CREATE TABLE IF NOT EXISTS session_search (session_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, body TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS session_search_body ON session_search USING GIN (to_tsvector('simple', body))",
        ],
    };
    for statement in statements {
        sqlx::query(statement).execute(pool).await?;
    }
    Ok(())
}

/// Indexes a session's text (once, at finalize).
pub(super) async fn index(
    tx: &mut Transaction<'_, Any>,
    tenant: &str,
    session: &str,
    body: &str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO session_search (session_id, tenant, body) VALUES ($1, $2, $3)")
        .bind(session)
        .bind(tenant)
        .bind(fold(body))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A condition selecting `sessions.id` values whose text matches the user's query, with its one
/// placeholder `$n`, and the value to bind.
pub(super) fn condition(backend: Backend, query: &str, n: usize) -> (String, String) {
    match backend {
        Backend::Sqlite => (
            format!("s.id IN (SELECT session_id FROM session_search WHERE session_search MATCH ${n})"),
            fts5_query(&fold(query)),
        ),
        Backend::Postgres => (
            format!(
                "s.id IN (SELECT session_id FROM session_search \
                 WHERE to_tsvector('simple', body) @@ websearch_to_tsquery('simple', ${n}))"
            ),
            fold(query),
        ),
    }
}

/// Lower case without diacritics (canonical decomposition, combining marks dropped).
fn fold(text: &str) -> String {
    use unicode_normalization::{char::is_combining_mark, UnicodeNormalization};
    text.nfd().filter(|c| !is_combining_mark(*c)).flat_map(char::to_lowercase).collect()
}

/// The user's query in FTS5 syntax, with the meaning PostgreSQL's `websearch_to_tsquery` gives
/// it: words and "quoted phrases" must all occur; `-word` must not; `or` between two terms
/// makes either do. Every term is quoted, so no input is an FTS5 syntax error.
fn fts5_query(query: &str) -> String {
    let mut terms: Vec<String> = Vec::new();
    let mut chars = query.chars().peekable();
    let mut or_next = false;
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let negated = c == '-';
        if negated {
            chars.next();
        }
        let text: String = if chars.peek() == Some(&'"') {
            chars.next();
            chars.by_ref().take_while(|&c| c != '"').collect()
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
            word
        };
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        if !negated && text.eq_ignore_ascii_case("or") && !terms.is_empty() {
            or_next = true;
            continue;
        }
        let quoted = format!("\"{}\"", text.replace('"', "\"\""));
        let term = if negated { format!("NOT {quoted}") } else { quoted };
        match (or_next, terms.last_mut()) {
            (true, Some(last)) if !negated => *last = format!("({last} OR {term})"),
            _ => terms.push(term),
        }
        or_next = false;
    }
    // FTS5 cannot start with NOT: a query of exclusions only matches nothing.
    match terms.iter().position(|t| !t.starts_with("NOT ")) {
        Some(first) => {
            let head = terms.remove(first);
            std::iter::once(head).chain(terms).collect::<Vec<_>>().join(" ")
        }
        None => "\"\"".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::{fold, fts5_query};

    #[test]
    fn folding_drops_case_and_accents_only() {
        assert_eq!(fold("¿Dónde está MI Factura?"), "¿donde esta mi factura?");
        assert_eq!(fold("Ñandú Çava"), "nandu cava");
        assert_eq!(fold("שלום עולם"), "שלום עולם");
    }

    #[test]
    fn user_queries_become_safe_fts5() {
        assert_eq!(fts5_query("refund  card"), r#""refund" "card""#);
        assert_eq!(fts5_query(r#""cancel my" plan"#), r#""cancel my" "plan""#);
        assert_eq!(fts5_query("refund -card"), r#""refund" NOT "card""#);
        assert_eq!(fts5_query("-card refund"), r#""refund" NOT "card""#);
        assert_eq!(fts5_query("refund or cancel plan"), r#"("refund" OR "cancel") "plan""#);
        assert_eq!(fts5_query(r#"a"b NEAR( *"#), r#""a""b" "NEAR(" "*""#);
        assert_eq!(fts5_query("-only"), r#""""#);
        assert_eq!(fts5_query("   "), r#""""#);
    }
}
