//! `/v1/namespaces`: the namespaces a key can read, with what it sees there.

use axum::Json;
use axum::extract::State;
use vector_index::store::Store;

use crate::app::AppState;
use crate::auth::Principal;
use crate::extract::ApiQuery;
use crate::model::NamespaceList;
use crate::routes::memories::AsAgent;

/// `GET /v1/namespaces`.
pub async fn list<S: Store>(
    State(app): State<AppState<S>>,
    who: Principal,
    ApiQuery(q): ApiQuery<AsAgent>,
) -> Json<NamespaceList> {
    Json(app.service.namespaces(&who, q.as_agent.as_deref()))
}
