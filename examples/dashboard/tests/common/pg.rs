//! A real PostgreSQL for the tests that need one: the server the script
//! started (`IPVTL_TEST_PG_URL`, set by `scripts/test.d/45-postgres.sh`),
//! and a fresh database on it per test.

use sqlx::Connection;

/// The server's URL from the script, or a loud failure.
pub fn base_url() -> String {
    match std::env::var("IPVTL_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "IPVTL_TEST_PG_URL is not set: these tests need a real PostgreSQL; \
             run scripts/test.d/45-postgres.sh, which starts one and sets it"
        ),
    }
}

/// `url` with its database replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, format!("?{q}")),
        None => (rest, String::new()),
    };
    let authority = rest.split_once('/').map_or(rest, |(a, _)| a);
    format!("{scheme}://{authority}/{db}{query}")
}

/// A new, empty database for one test; its URL (`name` may hold any
/// characters: only letters and digits are kept, the rest become `_`).
pub fn fresh_database(name: &str) -> String {
    let name: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    let base = base_url();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let db = format!("ipvtl_test_{name}_{}_{nanos}", std::process::id());
    smol::block_on(async {
        let mut c = sqlx::PgConnection::connect(&base).await.expect("the test server answers");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
            .execute(&mut c)
            .await
            .expect("CREATE DATABASE");
    });
    with_database(&base, &db)
}
