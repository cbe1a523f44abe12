package dynamostore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// tableReadyTimeout bounds how long CreateTable waits for a new table to
// become active.
const tableReadyTimeout = 5 * time.Minute

// NewClient returns a DynamoDB client configured from the environment the
// way AWS Lambda provides it: the region from AWS_REGION (or
// AWS_DEFAULT_REGION), the function role's credentials from
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, or from
// the container credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI or
// AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, as SnapStart and containers use),
// and the endpoint from AWS_ENDPOINT_URL_DYNAMODB (or AWS_ENDPOINT_URL). A
// non-empty endpoint (such as "http://127.0.0.1:4567" for dynalite)
// overrides the environment's; optFns adjust the client's options.
//
// It does not read the shared config files or profiles: the SDK's full
// configuration loader links STS, SSO and the IMDS client into every
// function binary (about 2 MB) for sources a function never has. A program
// that needs them builds its own client with config.LoadDefaultConfig and
// passes it to New.
func NewClient(endpoint string, optFns ...func(*dynamodb.Options)) (*dynamodb.Client, error) {
	return newClient(os.Getenv, endpoint, optFns...)
}

func newClient(getenv func(string) string, endpoint string, optFns ...func(*dynamodb.Options)) (*dynamodb.Client, error) {
	region := cmp.Or(getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION"))
	if region == "" {
		return nil, errors.New("dynamostore: no region: set AWS_REGION")
	}
	creds, err := envCredentials(getenv)
	if err != nil {
		return nil, err
	}
	endpoint = cmp.Or(endpoint, getenv("AWS_ENDPOINT_URL_DYNAMODB"), getenv("AWS_ENDPOINT_URL"))
	opts := dynamodb.Options{Region: region, Credentials: aws.NewCredentialsCache(creds)}
	if endpoint != "" {
		opts.BaseEndpoint = aws.String(endpoint)
	}
	return dynamodb.New(opts, optFns...), nil
}

// containerEndpointHost is the link-local address of the container
// credentials endpoint a relative URI is resolved against.
const containerEndpointHost = "http://169.254.170.2"

// envCredentials returns the credentials the environment names.
func envCredentials(getenv func(string) string) (aws.CredentialsProvider, error) {
	if id, key := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"); id != "" && key != "" {
		return credentials.NewStaticCredentialsProvider(id, key, getenv("AWS_SESSION_TOKEN")), nil
	}
	uri := getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI")
	if rel := getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"); uri == "" && rel != "" {
		uri = containerEndpointHost + rel
	}
	if uri == "" {
		return nil, errors.New("dynamostore: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (Lambda does), or AWS_CONTAINER_CREDENTIALS_FULL_URI")
	}
	return endpointcreds.New(uri, func(o *endpointcreds.Options) {
		if token := getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN"); token != "" {
			o.AuthorizationToken = token
		}
	}), nil
}

// CreateTable creates the table described in the package documentation
// (on-demand billing, TTL on the ttl attribute) and waits until it is
// active. A table that already exists is left as it is, apart from enabling
// its TTL, so CreateTable can run at every start of a local environment.
//
// DynamoDB emulators that do not implement UpdateTimeToLive (dynalite) are
// accepted: the Store filters expired items itself and needs TTL only to
// reclaim space.
func CreateTable(ctx context.Context, client *dynamodb.Client, table string) error {
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(table),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrPartition), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrSort), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrPartition), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrSort), KeyType: types.KeyTypeRange},
		},
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("dynamostore: create table %s: %w", table, err)
	}
	waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, 5*time.Second
	})
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, tableReadyTimeout); err != nil {
		return fmt.Errorf("dynamostore: wait for table %s: %w", table, err)
	}
	return enableTTL(ctx, client, table)
}

func enableTTL(ctx context.Context, client *dynamodb.Client, table string) error {
	desc, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	switch {
	case isUnknownOperation(err):
	case err != nil:
		return fmt.Errorf("dynamostore: describe ttl of %s: %w", table, err)
	case ttlEnabled(desc.TimeToLiveDescription):
		return nil
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(attrTTL),
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil && !isUnknownOperation(err) {
		return fmt.Errorf("dynamostore: enable ttl on %s: %w", table, err)
	}
	return nil
}

func ttlEnabled(d *types.TimeToLiveDescription) bool {
	return d != nil && aws.ToString(d.AttributeName) == attrTTL &&
		(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling)
}

// isUnknownOperation reports whether the server does not implement the
// operation, as dynalite answers for UpdateTimeToLive.
func isUnknownOperation(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "UnknownOperationException"
}
