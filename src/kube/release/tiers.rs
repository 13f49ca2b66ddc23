//! Tiers never overlap: a team instance never goes where a platform release keeps its record or
//! any of its objects, and a platform never renders into a namespace that holds a team
//! instance's record. Read from the records themselves (one LIST of every record), not from a
//! list of names.

use std::collections::{BTreeMap, BTreeSet};

use crate::bundle::ReleaseId;
use crate::kube::error::KubeError;
use crate::kube::progress::{Event, Reporter};
use crate::kube::release::inventory::{Inventory, Release, list_releases, read_inventory};

/// How many objects a refusal names before it says how many more there are.
const NAMED: usize = 5;

/// Where the platform keeps what a team instance must keep out of: each namespace with the
/// objects the platform has there (its record's namespace with none of them, if it has none).
fn platform_namespaces(
    record_namespace: &str,
    platform: &Inventory,
) -> BTreeMap<String, Vec<String>> {
    let mut namespaces: BTreeMap<String, Vec<String>> = BTreeMap::new();
    namespaces
        .entry(record_namespace.to_owned())
        .or_default()
        .push(format!(
            "its record, Secret/{record_namespace}/{}",
            crate::kube::release::state::record_name(&platform.release)
        ));
    for object in &platform.objects {
        let namespace = match (&object.id.namespace, object.id.kind.as_str()) {
            (Some(namespace), _) => namespace,
            (None, "Namespace") => &object.id.name,
            (None, _) => continue,
        };
        namespaces
            .entry(namespace.clone())
            .or_default()
            .push(object.id.subject());
    }
    namespaces
}

/// Refuses a team instance `team` (its namespace is its record's) in a namespace that holds a
/// platform release's record or objects. Every record is read with one LIST; credentials that
/// may not list them (a namespace admin) read the platform record of `addon` in the default
/// state namespace instead, and when that is refused too a warning says what was not checked
/// (the objects' labels still keep the platform's objects out of the team's hands).
///
/// # Errors
/// [`KubeError::Refused`] naming the platform, what it has there, and where a team may go; API
/// failures.
pub async fn check_team_namespace(
    client: &kube::Client,
    team: &ReleaseId,
    addon: &str,
    state_namespace: &str,
    reporter: &dyn Reporter,
) -> Result<(), KubeError> {
    let platforms: Vec<Release> = match list_releases(client, None).await {
        Ok(releases) => releases
            .into_iter()
            .filter(|r| r.inventory.instance.is_none())
            .collect(),
        Err(err) if err.code() == Some(403) => {
            match read_inventory(client, state_namespace, addon).await {
                Ok(Some(inventory)) => vec![Release {
                    name: inventory.release.clone(),
                    namespace: state_namespace.to_owned(),
                    inventory,
                    engine: None,
                }],
                Ok(None) => Vec::new(),
                Err(err) if err.code() == Some(403) => {
                    reporter.report(Event::Note(format!(
                        "warning: these credentials may not read the platform's record ({}): \
                         could not check that namespace {} holds nothing of the platform; \
                         plane still never takes an object another release's labels name",
                        err.to_problem().causes.join(": "),
                        team.namespace
                    )));
                    return Ok(());
                }
                Err(err) => return Err(err),
            }
        }
        Err(err) => return Err(err),
    };
    let places: Vec<(&Release, BTreeMap<String, Vec<String>>)> = platforms
        .iter()
        .map(|p| (p, platform_namespaces(&p.namespace, &p.inventory)))
        .collect();
    let Some((platform, here)) = places
        .iter()
        .find_map(|(p, namespaces)| Some((*p, namespaces.get(&team.namespace)?)))
    else {
        return Ok(());
    };
    let mut reasons: Vec<String> = vec![format!(
        "platform release {} (namespace {}) has {} thing(s) there",
        platform.name,
        platform.namespace,
        here.len()
    )];
    reasons.extend(here.iter().take(NAMED).cloned());
    if here.len() > NAMED {
        reasons.push(format!("… and {} more", here.len() - NAMED));
    }
    let forbidden: BTreeSet<&str> = places
        .iter()
        .flat_map(|(_, namespaces)| namespaces.keys().map(String::as_str))
        .chain(SYSTEM_NAMESPACES)
        .chain([state_namespace])
        .collect();
    Err(KubeError::Refused {
        what: format!(
            "namespace {} belongs to a platform release: no team instance goes there; nothing \
             was changed",
            team.namespace
        ),
        subject: Some(format!("Namespace/{}", team.namespace)),
        reasons,
        hint: Some(format!(
            "install the team instance into a namespace of its own: any existing namespace but {}",
            forbidden.into_iter().collect::<Vec<_>>().join(", ")
        )),
    })
}

/// The namespaces a team instance never goes into, whatever the records say: Kubernetes' own.
pub const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// Refuses a platform release whose record or objects would go into a namespace that holds a
/// team instance's record: `namespaces` are the render's (and the record's). A refused LIST of
/// records is a warning.
///
/// # Errors
/// [`KubeError::Refused`] naming each team instance in the way; API failures.
pub async fn check_platform_namespaces(
    client: &kube::Client,
    platform: &ReleaseId,
    namespaces: &BTreeSet<String>,
    reporter: &dyn Reporter,
) -> Result<(), KubeError> {
    let teams = match list_releases(client, None).await {
        Ok(releases) => releases,
        Err(err) if err.code() == Some(403) => {
            reporter.report(Event::Note(format!(
                "warning: these credentials may not list the release records ({}): could not \
                 check that no team instance lives where release {} goes",
                err.to_problem().causes.join(": "),
                platform.name
            )));
            return Ok(());
        }
        Err(err) => return Err(err),
    };
    let in_the_way: Vec<String> = teams
        .iter()
        .filter(|r| r.inventory.instance.is_some() && namespaces.contains(&r.namespace))
        .map(|r| {
            format!(
                "team instance {} (addon {}) keeps its record in namespace {}",
                r.name, r.inventory.addon, r.namespace
            )
        })
        .collect();
    if in_the_way.is_empty() {
        return Ok(());
    }
    Err(KubeError::Refused {
        what: format!(
            "release {} would go into a namespace of a team instance; nothing was changed",
            platform.name
        ),
        subject: None,
        reasons: in_the_way,
        hint: Some(
            "a platform and its team instances never share a namespace: remove the team \
             instance there (`plane down RELEASE -n NAMESPACE`), or render the platform into \
             other namespaces"
                .to_owned(),
        ),
    })
}
