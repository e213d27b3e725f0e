//! Starting the fleet on AWS (the `fleet` feature): one-off ECS tasks
//! (`RunTask` with a shard's `FLEET_*` values as container overrides) and
//! executions of the fan-out state machine (`StartExecution` with the input
//! `fleetctl plan` writes).

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, CapacityProviderStrategyItem, ContainerOverride, KeyValuePair, LaunchType,
    NetworkConfiguration, TaskOverride,
};
pub use {aws_sdk_ecs, aws_sdk_sfn};

use crate::{AwsError, Result, api_error};

/// The container every fleet task definition names (`task-definitions/`,
/// `infra/fleet.template.json`).
pub const CONTAINER: &str = "worker";

/// Where and how a task runs.
#[derive(Debug, Clone, Default)]
pub struct TaskPlacement {
    pub cluster: String,
    pub task_definition: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: bool,
    /// `FARGATE` or `FARGATE_SPOT` as the capacity provider; the launch
    /// type FARGATE (on demand) when `None`.
    pub capacity_provider: Option<String>,
}

/// A task started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedTask {
    pub arn: String,
    /// The `FLEET_*` values it was given, as ECS reports its overrides.
    pub environment: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Ecs {
    client: aws_sdk_ecs::Client,
}

impl Ecs {
    pub fn new(conf: &aws_config::SdkConfig) -> Self {
        Ecs { client: aws_sdk_ecs::Client::new(conf) }
    }

    pub async fn from_env() -> Result<Self> {
        Ok(Ecs::new(&crate::sdk_config().await?))
    }

    pub fn client(&self) -> &aws_sdk_ecs::Client {
        &self.client
    }

    /// Runs one task of `placement` with `environment` overriding the task
    /// definition's values in the `worker` container. A task ECS could not
    /// place is an error naming its reason.
    pub async fn run_task(
        &self,
        placement: &TaskPlacement,
        environment: &[(String, String)],
        started_by: &str,
    ) -> Result<StartedTask> {
        let env: Vec<KeyValuePair> =
            environment.iter().map(|(k, v)| KeyValuePair::builder().name(k).value(v).build()).collect();
        let over = ContainerOverride::builder().name(CONTAINER).set_environment(Some(env)).build();
        let mut req = self
            .client
            .run_task()
            .cluster(&placement.cluster)
            .task_definition(&placement.task_definition)
            .count(1)
            .started_by(started_by)
            .overrides(TaskOverride::builder().container_overrides(over).build());
        if !placement.subnets.is_empty() {
            let vpc = AwsVpcConfiguration::builder()
                .set_subnets(Some(placement.subnets.clone()))
                .set_security_groups(Some(placement.security_groups.clone()))
                .assign_public_ip(if placement.assign_public_ip {
                    AssignPublicIp::Enabled
                } else {
                    AssignPublicIp::Disabled
                })
                .build()
                .map_err(|e| AwsError::Invalid(format!("network configuration: {e}")))?;
            req = req.network_configuration(NetworkConfiguration::builder().awsvpc_configuration(vpc).build());
        }
        match &placement.capacity_provider {
            Some(cp) => {
                let item = CapacityProviderStrategyItem::builder()
                    .capacity_provider(cp)
                    .weight(1)
                    .build()
                    .map_err(|e| AwsError::Invalid(format!("capacity provider: {e}")))?;
                req = req.capacity_provider_strategy(item);
            }
            None => req = req.launch_type(LaunchType::Fargate),
        }
        let out = req.send().await.map_err(|e| api_error("ECS", "RunTask", e))?;
        if let Some(f) = out.failures().first() {
            return Err(AwsError::Api {
                service: "ECS",
                operation: "RunTask",
                message: format!(
                    "{} could not be placed: {} {}",
                    f.arn().unwrap_or(&placement.task_definition),
                    f.reason().unwrap_or("no reason given"),
                    f.detail().unwrap_or_default()
                ),
            });
        }
        let task = out.tasks().first().ok_or_else(|| AwsError::Api {
            service: "ECS",
            operation: "RunTask",
            message: "no task and no failure in the answer".into(),
        })?;
        let environment = task
            .overrides()
            .map(|o| o.container_overrides())
            .unwrap_or_default()
            .iter()
            .filter(|c| c.name() == Some(CONTAINER))
            .flat_map(|c| c.environment())
            .map(|kv| (kv.name().unwrap_or_default().to_string(), kv.value().unwrap_or_default().to_string()))
            .collect();
        Ok(StartedTask { arn: task.task_arn().unwrap_or_default().to_string(), environment })
    }
}

/// An execution started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    pub arn: String,
    pub status: String,
    pub input: Option<String>,
}

#[derive(Debug, Clone)]
pub struct StepFunctions {
    client: aws_sdk_sfn::Client,
}

impl StepFunctions {
    pub fn new(conf: &aws_config::SdkConfig) -> Self {
        StepFunctions { client: aws_sdk_sfn::Client::new(conf) }
    }

    pub async fn from_env() -> Result<Self> {
        Ok(StepFunctions::new(&crate::sdk_config().await?))
    }

    pub fn client(&self) -> &aws_sdk_sfn::Client {
        &self.client
    }

    /// Starts the state machine with `input` (JSON), named `name` (a run id
    /// names one execution: starting the same name again with the same
    /// input is the same execution).
    pub async fn start(&self, state_machine: &str, name: &str, input: &str) -> Result<Execution> {
        let out = self
            .client
            .start_execution()
            .state_machine_arn(state_machine)
            .name(name)
            .input(input)
            .send()
            .await
            .map_err(|e| api_error("Step Functions", "StartExecution", e))?;
        self.describe(out.execution_arn()).await
    }

    pub async fn describe(&self, execution: &str) -> Result<Execution> {
        let d = self
            .client
            .describe_execution()
            .execution_arn(execution)
            .send()
            .await
            .map_err(|e| api_error("Step Functions", "DescribeExecution", e))?;
        Ok(Execution {
            arn: d.execution_arn().to_string(),
            status: d.status().as_str().to_string(),
            input: d.input().map(str::to_string),
        })
    }
}
