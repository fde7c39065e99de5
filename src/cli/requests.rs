//! `keyquorum requests`: decryption requests that approvers review (README, "Decryption
//! requests"). The requester creates one from sealed NDJSON records, approvers list, show,
//! approve or deny it, and the requester executes it once approved.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use api::{CreateDecryptRequest, DecryptRequestInfo, RequestState, RequestedRecord};
use clap::Subcommand;

use super::{open_output, print_json, read_lines, runtime, ClientOpts, Failure};
use crate::records::{ciphertext_item, SealedRecord};

#[derive(Subcommand)]
pub(crate) enum RequestsCommand {
    /// Ask to open sealed records (NDJSON from `keyquorum encrypt`) for a stated reason;
    /// prints the request's id.
    ///
    /// Example: keyquorum requests create --key reid --reason "court order 2026/117" --in frames.ndjson
    Create {
        #[arg(long)]
        key: String,
        #[arg(long)]
        reason: String,
        #[arg(long = "in")]
        input: Option<PathBuf>,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// List the requests the node holds (newest first), or those in one state.
    ///
    /// Example: keyquorum requests list --state pending
    List {
        /// pending, approved, denied, expired or executed.
        #[arg(long)]
        state: Option<String>,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Show one request: requester, reason, records, approvals and refusals.
    Show {
        id: String,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Approve a request (signed by your client key; it must be on the key's approve list).
    ///
    /// Example: keyquorum requests approve 3f2a… --comment "order checked" --client-key dpo.key
    Approve {
        id: String,
        #[arg(long, default_value = "")]
        comment: String,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Refuse a request; with the policy's deny_closes (default) this closes it.
    Deny {
        id: String,
        #[arg(long, default_value = "")]
        comment: String,
        #[command(flatten)]
        client: ClientOpts,
    },
    /// Execute your approved request once: writes the opened records as NDJSON.
    ///
    /// Example: keyquorum requests execute 3f2a… --out opened.ndjson --client-key analyst.key
    Execute {
        id: String,
        /// Let the node combine the partials (it learns the records). By default this client
        /// combines: holders seal their partials to it (DESIGN.md §6).
        #[arg(long)]
        combine_on_node: bool,
        #[arg(long = "out")]
        output: Option<PathBuf>,
        #[command(flatten)]
        client: ClientOpts,
    },
}

fn usage(message: impl Into<String>) -> Failure {
    Failure(ExitCode::from(2), message.into())
}

fn print_request(r: &DecryptRequestInfo) {
    println!("request {} ({})", r.id, r.state.as_str());
    println!("  key:        {}", r.key);
    println!("  requester:  {}", r.requester);
    println!("  reason:     {}", r.reason);
    println!("  records:    {}", r.records);
    for label in r
        .labels
        .iter()
        .filter(|l| l.video.is_some() || l.frame.is_some())
    {
        println!(
            "    {} frame {}",
            label.video.as_deref().unwrap_or("?"),
            label.frame.map_or("?".to_string(), |f| f.to_string())
        );
    }
    println!(
        "  approvals:  {} of {} ({})",
        r.approvals.len(),
        r.approvals_needed,
        r.approvers.join(", ")
    );
    for a in &r.approvals {
        println!("    approved by {} at {}: {}", a.client, a.at, a.comment);
    }
    for d in &r.refusals {
        println!("    refused by {} at {}: {}", d.client, d.at, d.comment);
    }
    println!("  created:    {}", r.created_at);
    println!("  expires:    {}", r.expires_at);
    if let Some(at) = &r.executed_at {
        println!("  executed:   {at}");
    }
}

pub(crate) fn run(cmd: RequestsCommand) -> Result<ExitCode, Failure> {
    let rt = runtime()?;
    match cmd {
        RequestsCommand::Create {
            key,
            reason,
            input,
            client,
        } => {
            let records = read_lines(input.as_ref())?
                .iter()
                .enumerate()
                .map(|(n, line)| {
                    let sealed: SealedRecord = serde_json::from_str(line)
                        .map_err(|e| usage(format!("line {}: not a sealed record: {e}", n + 1)))?;
                    Ok(RequestedRecord {
                        item: ciphertext_item(&sealed),
                        video: Some(sealed.video),
                        frame: Some(sealed.frame),
                    })
                })
                .collect::<Result<Vec<_>, Failure>>()?;
            let created = rt.block_on(client.client()?.create_decrypt_request(
                &key,
                &CreateDecryptRequest {
                    ciphertexts: records,
                    reason,
                },
            ))?;
            if client.json {
                print_json(&created);
            } else {
                println!("{}", created.id);
                eprintln!(
                    "request {} is {}: it needs {} approvals and expires at {}",
                    created.id,
                    created.state.as_str(),
                    created.approvals_needed,
                    created.expires_at
                );
            }
        }
        RequestsCommand::List { state, client } => {
            let state: Option<RequestState> = state
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(usage)?;
            let list = rt.block_on(client.client()?.list_decrypt_requests(state))?;
            if client.json {
                print_json(&list);
            } else {
                for r in &list.requests {
                    println!(
                        "{}  {:8}  {}  by {}  {} records  {}/{} approvals  {}",
                        r.id,
                        r.state.as_str(),
                        r.key,
                        r.requester,
                        r.records,
                        r.approvals.len(),
                        r.approvals_needed,
                        r.reason
                    );
                }
            }
        }
        RequestsCommand::Show { id, client } => {
            let shown = rt.block_on(client.client()?.get_decrypt_request(&id))?;
            if client.json {
                print_json(&shown);
            } else {
                print_request(&shown);
            }
        }
        RequestsCommand::Approve {
            id,
            comment,
            client,
        } => review(&rt, &client, &id, true, &comment)?,
        RequestsCommand::Deny {
            id,
            comment,
            client,
        } => review(&rt, &client, &id, false, &comment)?,
        RequestsCommand::Execute {
            id,
            combine_on_node,
            output,
            client,
        } => return execute(&rt, &client, &id, combine_on_node, output.as_ref()),
    }
    Ok(ExitCode::SUCCESS)
}

fn review(
    rt: &tokio::runtime::Runtime,
    client: &ClientOpts,
    id: &str,
    approve: bool,
    comment: &str,
) -> Result<(), Failure> {
    let after = rt.block_on(
        client
            .client()?
            .review_decrypt_request(id, approve, comment),
    )?;
    if client.json {
        print_json(&after);
    } else {
        print_request(&after);
    }
    Ok(())
}

/// Executes and writes each opened record: the original metadata record, checked against its
/// video and frame, where the request carries them; else the plaintext in base64.
fn execute(
    rt: &tokio::runtime::Runtime,
    client: &ClientOpts,
    id: &str,
    combine_on_node: bool,
    output: Option<&PathBuf>,
) -> Result<ExitCode, Failure> {
    let api_client = client.client()?;
    let shown = rt.block_on(api_client.get_decrypt_request(id))?;
    let algorithm = rt.block_on(api_client.get_key(&shown.key))?.algorithm;
    let answer = if combine_on_node {
        rt.block_on(api_client.execute_decrypt_request_by_node(id))?
    } else {
        rt.block_on(api_client.execute_decrypt_request(id))?
    };
    if client.json {
        print_json(&answer);
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = open_output(output)?;
    let mut failed = 0;
    for (i, result) in answer.results.iter().enumerate() {
        let item = &shown.ciphertexts[i];
        let label = &shown.labels[i];
        let opened = match (&result.plaintext, &result.error, &label.video, label.frame) {
            (Some(plain), _, Some(video), Some(frame)) => {
                let sealed = SealedRecord {
                    video: video.clone(),
                    frame,
                    algorithm,
                    enc: item.enc.clone(),
                    ciphertext: item.ciphertext.clone(),
                    aead: item.aead.clone(),
                };
                crate::records::open(&sealed, plain)
            }
            (Some(plain), _, _, _) => Ok(serde_json::json!({"index": i, "plaintext": plain})),
            (None, Some(e), _, _) => Err(e.clone()),
            (None, None, _, _) => Err("no result".into()),
        };
        match opened {
            Ok(record) => writeln!(out, "{record}").map_err(anyhow::Error::from)?,
            Err(e) => {
                failed += 1;
                eprintln!("record {i}: {e}");
            }
        }
    }
    out.flush().map_err(anyhow::Error::from)?;
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
