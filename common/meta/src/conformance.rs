//! The behaviour every meta store adapter must have, run against each of them.

use serde_json::json;

use super::{Collection, MetaError, MetaStore, Page};

pub const USERS: Collection = Collection {
    name: "conformance_users",
    unique: &["username", "email"],
    indexed: &["role"],
};

const ALL: Page = Page {
    offset: 0,
    limit: 100,
};

pub async fn run(store: &dyn MetaStore) {
    store.prepare(&[USERS]).await.expect("prepare");
    store
        .prepare(&[USERS])
        .await
        .expect("prepare is idempotent");

    let ada = json!({"username": "ada", "email": "ada@example.com", "role": "admin"});
    let bob = json!({"username": "bob", "email": "bob@example.com", "role": "viewer"});
    let cy = json!({"username": "cy", "role": "viewer"});
    store.insert(&USERS, "u1", &ada).await.expect("insert ada");
    store.insert(&USERS, "u2", &bob).await.expect("insert bob");
    store
        .insert(&USERS, "u3", &cy)
        .await
        .expect("absent unique fields do not collide");

    // Unique id and unique fields.
    let duplicate_id = store
        .insert(&USERS, "u1", &json!({"username": "zed"}))
        .await;
    assert!(
        matches!(duplicate_id, Err(MetaError::Conflict { .. })),
        "{duplicate_id:?}"
    );
    let taken = store
        .insert(
            &USERS,
            "u9",
            &json!({"username": "ada", "email": "other@example.com"}),
        )
        .await;
    match taken {
        Err(MetaError::Conflict { field, .. }) => assert_eq!(field, "username"),
        other => panic!("expected a username conflict, got {other:?}"),
    }

    // Reads.
    assert_eq!(
        store.get(&USERS, "u1").await.expect("get"),
        Some(ada.clone())
    );
    assert_eq!(store.get(&USERS, "nobody").await.expect("get"), None);
    let viewers = store
        .find(&USERS, &[("role", json!("viewer"))], ALL)
        .await
        .expect("find");
    assert_eq!(
        viewers,
        vec![
            ("u2".to_owned(), bob.clone()),
            ("u3".to_owned(), cy.clone())
        ]
    );
    let by_name = store
        .find(
            &USERS,
            &[("username", json!("bob")), ("role", json!("viewer"))],
            ALL,
        )
        .await
        .expect("find");
    assert_eq!(by_name.len(), 1);
    assert_eq!(
        store
            .find_one(&USERS, &[("username", json!("bob"))])
            .await
            .expect("find one"),
        Some(("u2".to_owned(), bob.clone()))
    );
    assert_eq!(
        store
            .find_one(&USERS, &[("username", json!("nobody"))])
            .await
            .expect("find one"),
        None
    );
    let second_page = store
        .find(
            &USERS,
            &[],
            Page {
                offset: 1,
                limit: 1,
            },
        )
        .await
        .expect("page");
    assert_eq!(second_page, vec![("u2".to_owned(), bob.clone())]);
    assert_eq!(store.count(&USERS, &[]).await.expect("count"), 3);
    assert_eq!(
        store
            .count(&USERS, &[("role", json!("admin"))])
            .await
            .expect("count"),
        1
    );
    assert_eq!(
        store
            .count(&USERS, &[("role", json!("it's; DROP TABLE x"))])
            .await
            .expect("values are data, not SQL"),
        0
    );
    assert!(matches!(
        store.count(&USERS, &[("role' OR 1=1 --", json!(1))]).await,
        Err(MetaError::Invalid(_))
    ));

    // Replace keeps unique fields unique.
    let promoted = json!({"username": "bob", "email": "bob@example.com", "role": "moderator"});
    assert!(
        store
            .replace(&USERS, "u2", &promoted, &[("role", json!("viewer"))])
            .await
            .expect("replace")
    );
    assert_eq!(
        store.get(&USERS, "u2").await.expect("get"),
        Some(promoted.clone())
    );
    assert!(
        !store
            .replace(&USERS, "u2", &bob, &[("role", json!("viewer"))])
            .await
            .expect("replace with a stale condition"),
        "a document that no longer matches is left alone"
    );
    assert_eq!(store.get(&USERS, "u2").await.expect("get"), Some(promoted));
    assert!(
        !store
            .replace(&USERS, "nobody", &bob, &[])
            .await
            .expect("replace missing")
    );
    let steal = store
        .replace(&USERS, "u3", &json!({"username": "ada"}), &[])
        .await;
    assert!(
        matches!(steal, Err(MetaError::Conflict { .. })),
        "{steal:?}"
    );

    // Delete.
    assert!(store.delete(&USERS, "u3").await.expect("delete"));
    assert!(!store.delete(&USERS, "u3").await.expect("delete again"));
    assert_eq!(store.count(&USERS, &[]).await.expect("count"), 2);
}
