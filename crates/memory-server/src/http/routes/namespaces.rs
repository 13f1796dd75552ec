//! `/v1/namespaces`: the namespaces a key can read, with what it sees there.

use axum::Json;
use axum::extract::State;

use crate::auth::Principal;
use crate::http::AppState;
use crate::http::extract::ApiQuery;
use crate::http::routes::memories::AsAgent;
use crate::model::NamespaceList;

/// `GET /v1/namespaces`.
pub async fn list(
    State(app): State<AppState>,
    who: Principal,
    ApiQuery(q): ApiQuery<AsAgent>,
) -> Json<NamespaceList> {
    Json(app.service.namespaces(&who, q.as_agent.as_deref()))
}
