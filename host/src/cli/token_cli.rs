//! `wasmadm token ...`: argument handling and printing over [`crate::token`].

use super::output;
use crate::cluster::Cluster;
use crate::token::{self, CreateOptions};
use anyhow::Result;
use clap::{Subcommand, ValueEnum};
use kubeadm_bootstrap_token::{DEFAULT_GROUP, Token, clock};
use std::sync::Arc;

#[derive(Subcommand)]
pub enum TokenCmd {
    /// Create bootstrap tokens on the server.
    ///
    /// This command will create a bootstrap token for you. You can specify the usages for this
    /// token, the "time to live" and an optional human friendly description.
    ///
    /// The [TOKEN] is the actual token to write. This should be a securely generated random token
    /// of the form "[a-z0-9]{6}.[a-z0-9]{16}". If no [TOKEN] is given, wasmadm will generate a
    /// random token instead.
    Create {
        /// The token to create, "[a-z0-9]{6}.[a-z0-9]{16}"; generated when omitted.
        token: Option<String>,
        /// The duration before the token is automatically deleted (e.g. 1s, 2m, 3h). If set to
        /// '0', the token will never expire.
        #[arg(long, default_value = "24h0m0s", value_name = "DURATION")]
        ttl: String,
        /// A human friendly description of how this token is used.
        #[arg(long, default_value = "", hide_default_value = true)]
        description: String,
        /// Describes the ways in which this token can be used. You can pass --usages multiple
        /// times or provide a comma separated list of options. Valid options: [signing,authentication]
        #[arg(long, value_delimiter = ',', default_values_t = ["signing".to_string(), "authentication".to_string()])]
        usages: Vec<String>,
        /// Extra groups that this token will authenticate as when used for authentication. Must
        /// match "\Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z"
        #[arg(long, value_delimiter = ',', default_values_t = [DEFAULT_GROUP.to_string()])]
        groups: Vec<String>,
        /// Instead of printing only the token, print the full 'wasmadm join' flag needed to join
        /// the cluster using the token (endpoint and CA pin from --kubeconfig).
        #[arg(long)]
        print_join_command: bool,
        /// When used together with '--print-join-command', print the full 'wasmadm join' flag
        /// needed to join the cluster as a control-plane. To create a new certificate key you
        /// must use 'wasmadm init phase upload-certs --upload-certs'.
        #[arg(long, value_name = "KEY", requires = "print_join_command")]
        certificate_key: Option<String>,
    },
    /// List bootstrap tokens on the server.
    ///
    /// Columns: TOKEN, TTL, EXPIRES, USAGES, DESCRIPTION, EXTRA GROUPS.
    List {
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Delete bootstrap tokens on the server.
    ///
    /// Each argument is a whole token "[a-z0-9]{6}.[a-z0-9]{16}" or a token ID "[a-z0-9]{6}".
    Delete {
        /// Tokens or token IDs to delete.
        #[arg(required = true, value_name = "TOKEN-VALUE")]
        tokens: Vec<String>,
    },
    /// Generate and print a bootstrap token, but do not create it on the server.
    ///
    /// The token can be used with the "init" and "join" commands. You don't have to use this
    /// command: any value of the form "[a-z0-9]{6}.[a-z0-9]{16}" works, and "wasmadm init"
    /// generates and prints one when the configuration has none.
    Generate,
}

/// `token list -o`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
    Yaml,
}

/// Runs a token command; `cluster` and `kubeconfig` are asked for only when needed.
pub fn run(
    command: TokenCmd,
    cluster: impl FnOnce() -> Result<Arc<dyn Cluster>>,
    kubeconfig: impl FnOnce() -> Result<String>,
) -> Result<()> {
    match command {
        TokenCmd::Generate => output::print(&format!("{}\n", Token::generate()?))?,
        TokenCmd::Create {
            token,
            ttl,
            description,
            usages,
            groups,
            print_join_command,
            certificate_key,
        } => {
            let opts = CreateOptions {
                token,
                ttl,
                description,
                usages,
                groups,
            };
            // Checked before any API call, so that a typo never leaves a half-made token.
            if let Some(t) = &opts.token {
                Token::parse(t)?;
            }
            let kubeconfig = print_join_command.then(kubeconfig).transpose()?;
            let spec = token::create(cluster()?.as_ref(), &opts, clock::now())?;
            match kubeconfig {
                Some(k) => output::print(&format!(
                    "{}\n",
                    token::join_command(&k, &spec.token, certificate_key.as_deref())?
                ))?,
                None => output::print(&format!("{}\n", spec.token))?,
            }
        }
        TokenCmd::List { output } => {
            let (tokens, problems) = token::list(cluster()?.as_ref())?;
            for p in problems {
                eprintln!("{p}");
            }
            match output {
                Output::Text => output::print(&token::table(&tokens, clock::now_millis()))?,
                Output::Json => {
                    for t in &tokens {
                        output::print(&format!(
                            "{}\n",
                            serde_json::to_string_pretty(&token::output_object(t))?
                        ))?;
                    }
                }
                Output::Yaml => {
                    for t in &tokens {
                        output::print(&serde_yaml::to_string(&token::output_object(t))?)?;
                    }
                }
            }
        }
        TokenCmd::Delete { tokens } => {
            for t in &tokens {
                kubeadm_bootstrap_token::parse_id_or_token(t)?;
            }
            let cluster = cluster()?;
            for t in tokens {
                let id = token::delete(cluster.as_ref(), &t)?;
                output::print(&format!("bootstrap token {id:?} deleted\n"))?;
            }
        }
    }
    Ok(())
}
