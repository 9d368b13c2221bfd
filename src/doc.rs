//! `swarm doc set|get|conflicts|grant`: mutable records through a running node's control API. A
//! record is (owner, key) -> value; concurrent writes are settled by the later one and the loser
//! is kept in the record's conflict log, which `get` and `conflicts` show.

use crate::client::{self, DEFAULT_API};
use crate::node::doc::{DocConflicts, DocSetRequest, DocVersion, DocView, GrantRequest, GrantView};
use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum DocCmd {
    /// Write VALUE to the record KEY (this node's own, or --owner's under its grant); prints the
    /// record as this node then holds it.
    Set {
        key: String,
        value: String,
        /// The record's owner (user id or peer id), when it is not this node.
        #[arg(long)]
        owner: Option<String>,
        /// The owner's grant (from `swarm doc grant` on the owner's node), for the first write.
        #[arg(long)]
        grant: Option<String>,
        #[arg(long, default_value = DEFAULT_API)]
        api: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the record KEY: its value and its conflicts (merged with what a quorum of its replicas hold).
    Get {
        key: String,
        /// The record's owner (user id or peer id); this node's own record by default.
        #[arg(long)]
        owner: Option<String>,
        #[arg(long, default_value = DEFAULT_API)]
        api: String,
        #[arg(long)]
        json: bool,
    },
    /// Every record this node holds with a non-empty conflict log.
    Conflicts {
        #[arg(long, default_value = DEFAULT_API)]
        api: String,
        #[arg(long)]
        json: bool,
    },
    /// Let WRITER (a peer id) write this node's records (only --key if given); prints the grant to
    /// hand to the writer.
    Grant {
        writer: String,
        #[arg(long)]
        key: Option<String>,
        #[arg(long, default_value = DEFAULT_API)]
        api: String,
    },
}

fn print_version(label: &str, v: &DocVersion) {
    println!("{label} {} (by {}, unix ms {})", v.value, v.writer, v.unix_ms);
}

fn print_doc(d: &DocView) {
    println!("record: {} of {} ({})", d.key, d.owner_user_id, d.owner);
    match &d.value {
        Some(v) => print_version("value:", v),
        None => println!("value: (none)"),
    }
    println!("conflicts: {}", d.conflicts.len());
    for c in &d.conflicts {
        print_version("  lost:", c);
    }
}

fn show<T: serde::Serialize>(v: &T, json: bool, text: impl FnOnce(&T)) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(v)?);
    } else {
        text(v);
    }
    Ok(())
}

pub fn run(cmd: DocCmd) -> Result<()> {
    match cmd {
        DocCmd::Set { key, value, owner, grant, api, json } => {
            let body = serde_json::to_value(DocSetRequest { key, value, owner, grant })?;
            let d: DocView = client::post_json(&api, "/doc/set", body)?;
            show(&d, json, print_doc)
        }
        DocCmd::Get { key, owner, api, json } => {
            let mut query = vec![("key", key.as_str())];
            if let Some(o) = &owner {
                query.push(("owner", o.as_str()));
            }
            let d: DocView = client::get_query(&api, "/doc/get", &query)?;
            show(&d, json, print_doc)
        }
        DocCmd::Conflicts { api, json } => {
            let c: DocConflicts = client::get_query(&api, "/doc/conflicts", &[])?;
            show(&c, json, |c| {
                for d in &c.records {
                    print_doc(d);
                }
                println!("{} records with conflicts", c.records.len());
            })
        }
        DocCmd::Grant { writer, key, api } => {
            let body = serde_json::to_value(GrantRequest { writer, key })?;
            let g: GrantView = client::post_json(&api, "/doc/grant", body)?;
            println!("{}", g.grant);
            Ok(())
        }
    }
}
