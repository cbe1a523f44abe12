package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// tableReadyTimeout bounds how long CreateTable waits for a new table to
// become active.
const tableReadyTimeout = 5 * time.Minute

// NewClient returns a DynamoDB client configured the way the AWS SDK loads
// its configuration: credentials chain, AWS_REGION, AWS_ENDPOINT_URL_DYNAMODB
// and the shared config files. A non-empty endpoint (such as
// "http://127.0.0.1:4567" for dynalite) overrides the service endpoint;
// optFns adjust the loading, e.g. config.WithHTTPClient or
// config.WithRegion.
func NewClient(ctx context.Context, endpoint string, optFns ...func(*config.LoadOptions) error) (*dynamodb.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx, optFns...)
	if err != nil {
		return nil, fmt.Errorf("dynamostore: load aws config: %w", err)
	}
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
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
